using System.Buffers.Binary;
using Rafs.Format;
using Microsoft.Win32.SafeHandles;

namespace Rafs.Build;

/// <summary>
/// Lays out and writes everything but file data: shared xattrs, inodes (with inline xattrs, inline tails and
/// chunk indexes), directory and symlink blocks, and finally block 0 with the superblock and device table.
/// </summary>
internal sealed class MetadataWriter
{
    private const int BlockSize = ErofsFormat.BlockSize;
    /// <summary>The device table starts right after the superblock, in 128-byte slot units.</summary>
    private const int DeviceTableOffset = ErofsFormat.SuperOffset + SuperBlock.Size;

    private readonly List<BuildNode> _inodes;
    private readonly long _buildTime;
    private readonly Dictionary<BuildNode, DirLayout> _dirs = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<BuildNode, uint> _symlinkBlocks = new(ReferenceEqualityComparer.Instance);

    private sealed record DirLayout(List<(byte[] Name, BuildNode Node)> Entries, List<int> BlockCounts, long Size, bool InlineTail)
    {
        public uint FirstBlock { get; set; }
        public int StoredBlocks => InlineTail ? BlockCounts.Count - 1 : BlockCounts.Count;
    }

    public MetadataWriter(List<BuildNode> inodes, long buildTime)
    {
        _inodes = inodes;
        _buildTime = buildTime;
    }

    /// <summary>Blocks reserved at the start of the file for the superblock and a device table of this many slots.</summary>
    public static long HeaderBlocks(int devices) =>
        Math.Max(1, (DeviceTableOffset + (long)devices * DeviceSlot.Size + BlockSize - 1) / BlockSize);

    public long Write(SafeFileHandle output, long firstFreeBlock, XattrPlanner xattrs, IReadOnlyList<DeviceSlot> devices,
        ITailSource? tails, Guid uuid, string volumeName)
    {
        long block = firstFreeBlock;
        uint xattrBlock = 0;
        if (xattrs.HasShared)
        {
            xattrBlock = checked((uint)block);
            RandomAccess.Write(output, xattrs.SharedArea, block * BlockSize);
            block += (xattrs.SharedArea.Length + BlockSize - 1) / BlockSize;
        }

        foreach (var node in _inodes)
            if (node.IsDirectory) _dirs[node] = PlanDirectory(node);

        // Inode area: the root comes first; meta_blkaddr is one block before it so the root nid (a 16-bit field) is 128.
        long inodeStart = block * BlockSize;
        uint metaBlock = checked((uint)(block - 1));
        long metaBase = (long)metaBlock * BlockSize;
        long cursor = inodeStart;
        var offsets = new long[_inodes.Count];
        for (int i = 0; i < _inodes.Count; i++)
        {
            var node = _inodes[i];
            int fixedPart = InodeShape.CoreSize(node, _buildTime) + node.XattrBody.Length + InlinePayloadLength(node);
            long inBlock = cursor % BlockSize;
            if (inBlock != 0 && inBlock + fixedPart > BlockSize) cursor += BlockSize - inBlock;
            offsets[i] = cursor;
            node.Nid = (ulong)((cursor - metaBase) >> ErofsFormat.InodeSlotBits);
            cursor += fixedPart;
            if (node.Data is ChunkedData chunked)
                cursor = Align(cursor, ChunkIndex.Size) + (long)chunked.Indexes.Length * ChunkIndex.Size;
            cursor = Align(cursor, ErofsFormat.InodeSlotSize);
        }
        if (_inodes[0].Nid > ushort.MaxValue) throw new InvalidOperationException("root nid does not fit 16 bits");

        // Directory and long-symlink blocks follow the inodes.
        block = Align(cursor, BlockSize) / BlockSize;
        foreach (var node in _inodes)
        {
            if (_dirs.TryGetValue(node, out var dir))
            {
                dir.FirstBlock = dir.StoredBlocks > 0 ? checked((uint)block) : 0;
                block += dir.StoredBlocks;
            }
            else if (node.IsSymlink && !SymlinkInline(node))
            {
                _symlinkBlocks[node] = checked((uint)block);
                block++;
            }
        }
        long totalBlocks = block;

        using (var region = new RegionWriter(output))
        {
            var scratch = new byte[BlockSize * 2];
            for (int i = 0; i < _inodes.Count; i++)
                WriteInode(region, _inodes[i], i, offsets[i], tails, scratch);
        }
        WriteDirectoryBlocks(output);
        foreach (var (node, at) in _symlinkBlocks)
        {
            var buffer = new byte[BlockSize];
            node.LinkTarget!.CopyTo(buffer, 0);
            RandomAccess.Write(output, buffer, (long)at * BlockSize);
        }

        bool anyChunked = _inodes.Any(n => n.Data is ChunkedData);
        var sb = new SuperBlock
        {
            FeatureCompat = ErofsFormat.FeatureCompatSbChecksum,
            FeatureIncompat = (anyChunked ? ErofsFormat.FeatureIncompatChunkedFile : 0) |
                              (devices.Count > 0 ? ErofsFormat.FeatureIncompatDeviceTable : 0),
            RootNid = (ushort)_inodes[0].Nid,
            Inodes = (ulong)_inodes.Count,
            BuildTime = (ulong)_buildTime,
            BuildTimeNsec = 0,
            Blocks = checked((uint)totalBlocks),
            MetaBlockAddress = metaBlock,
            XattrBlockAddress = xattrBlock,
            Uuid = uuid,
            VolumeName = volumeName,
            ExtraDevices = checked((ushort)devices.Count),
            DeviceTableSlotOffset = devices.Count > 0 ? (ushort)(DeviceTableOffset / DeviceSlot.Size) : (ushort)0,
        };
        var header = new byte[HeaderBlocks(devices.Count) * BlockSize];
        for (int i = 0; i < devices.Count; i++)
            devices[i].Write(header.AsSpan(DeviceTableOffset + i * DeviceSlot.Size));
        sb.Write(header.AsSpan(ErofsFormat.SuperOffset));
        uint checksum = SuperBlock.ComputeChecksum(header.AsSpan(ErofsFormat.SuperOffset, SuperBlock.ChecksumLength));
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(ErofsFormat.SuperOffset + 4), checksum);
        RandomAccess.Write(output, header, 0);
        RandomAccess.SetLength(output, totalBlocks * BlockSize);
        return totalBlocks;
    }

    private DirLayout PlanDirectory(BuildNode dir)
    {
        var entries = new List<(byte[] Name, BuildNode Node)>(dir.Children!.Count + 2) { ("."u8.ToArray(), dir), (".."u8.ToArray(), dir.Parent!) };
        foreach (var c in dir.Children) entries.Add((c.Name, c.Node));
        entries.Sort((a, b) => DirectoryBlocks.CompareNames(a.Name, b.Name));
        var counts = DirectoryBlocks.Plan(entries.Select(e => new DirEntry(e.Name, 0, ErofsFileType.Unknown)).ToList(), out long size);
        long tail = size % BlockSize;
        bool inline = InodeShape.TailFitsInline(dir, _buildTime, tail);
        return new DirLayout(entries, counts, size, inline);
    }

    private bool SymlinkInline(BuildNode node) => InodeShape.TailFitsInline(node, _buildTime, node.LinkTarget!.Length);

    private int InlinePayloadLength(BuildNode node)
    {
        if (_dirs.TryGetValue(node, out var dir)) return dir.InlineTail ? (int)(dir.Size % BlockSize) : 0;
        if (node.IsSymlink) return SymlinkInline(node) ? node.LinkTarget!.Length : 0;
        if (node.Data is FlatData { InlineTail: true } flat) return flat.TailLength;
        return 0;
    }

    private void WriteInode(RegionWriter region, BuildNode node, int index, long offset, ITailSource? tails, byte[] scratch)
    {
        bool extended = InodeShape.NeedsExtended(node, _buildTime);
        int core = extended ? InodeExtended.Size : InodeCompact.Size;
        InodeDataLayout layout = InodeDataLayout.FlatPlain;
        uint u = 0;
        ReadOnlySpan<byte> inlinePayload = default;
        byte[]? indexBytes = null;
        int type = node.Mode & UnixMode.TypeMask;
        if (_dirs.TryGetValue(node, out var dir))
        {
            u = dir.FirstBlock;
            if (dir.InlineTail)
            {
                layout = InodeDataLayout.FlatInline;
                var tail = scratch.AsSpan(BlockSize, BlockSize);
                tail.Clear();
                int last = dir.BlockCounts.Count - 1;
                int used = DirectoryBlocks.EncodeBlock(Resolve(dir.Entries), dir.BlockCounts.Take(last).Sum(), dir.BlockCounts[last], tail);
                inlinePayload = tail[..used];
            }
        }
        else if (node.IsSymlink)
        {
            if (_symlinkBlocks.TryGetValue(node, out uint at)) u = at;
            else { layout = InodeDataLayout.FlatInline; inlinePayload = node.LinkTarget; }
        }
        else if (type is UnixMode.CharDevice or UnixMode.BlockDevice)
        {
            u = DeviceNumber.Encode(node.RdevMajor, node.RdevMinor);
        }
        else if (node.Data is FlatData flat)
        {
            u = flat.BlockAddress;
            if (flat.InlineTail)
            {
                layout = InodeDataLayout.FlatInline;
                var tail = scratch.AsSpan(BlockSize, flat.TailLength);
                (tails ?? throw new InvalidOperationException("inline tail without a tail source")).ReadTail(flat, tail);
                inlinePayload = tail;
            }
        }
        else if (node.Data is ChunkedData chunked)
        {
            layout = InodeDataLayout.ChunkBased;
            u = ChunkInfo.ForChunkSizeBits(chunked.ChunkSizeBits, indexes: true).Format;
            indexBytes = new byte[chunked.Indexes.Length * ChunkIndex.Size];
            for (int i = 0; i < chunked.Indexes.Length; i++)
                chunked.Indexes[i].Write(indexBytes.AsSpan(i * ChunkIndex.Size));
        }

        ulong size = dir is not null ? (ulong)dir.Size : (ulong)node.Size;
        var disk = new DiskInode(extended, layout, InodeFormat.XattrICount(node.XattrBody.Length), node.Mode, node.Nlink,
            size, u, (uint)(index + 1), node.Uid, node.Gid, node.MtimeSeconds, node.MtimeNanoseconds);
        var head = scratch.AsSpan(0, core);
        disk.Write(head);
        region.Write(offset, head);
        long at2 = offset + core;
        region.Write(at2, node.XattrBody);
        at2 += node.XattrBody.Length;
        if (!inlinePayload.IsEmpty) region.Write(at2, inlinePayload);
        if (indexBytes is not null) region.Write(Align(at2, ChunkIndex.Size), indexBytes);
    }

    private static List<DirEntry> Resolve(List<(byte[] Name, BuildNode Node)> entries) =>
        entries.Select(e => new DirEntry(e.Name, e.Node.Nid, UnixMode.ToFileType(e.Node.Mode))).ToList();

    private void WriteDirectoryBlocks(SafeFileHandle output)
    {
        var block = new byte[BlockSize];
        foreach (var (_, dir) in _dirs)
        {
            if (dir.StoredBlocks == 0) continue;
            var entries = Resolve(dir.Entries);
            int first = 0;
            for (int b = 0; b < dir.StoredBlocks; b++)
            {
                Array.Clear(block);
                DirectoryBlocks.EncodeBlock(entries, first, dir.BlockCounts[b], block);
                RandomAccess.Write(output, block, (long)(dir.FirstBlock + b) * BlockSize);
                first += dir.BlockCounts[b];
            }
        }
    }

    private static long Align(long value, long alignment) => (value + alignment - 1) / alignment * alignment;
}
