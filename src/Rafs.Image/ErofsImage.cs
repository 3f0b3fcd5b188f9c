using System.Buffers.Binary;
using System.Text;
using Rafs.Format;

namespace Rafs.Image;

/// <summary>
/// Reads an EROFS image (uncompressed layouts: flat, inline tail, chunk-based with block maps or indexes, extra
/// devices). Every on-disk value is bounds-checked before use; only <see cref="ImageException"/> kinds describe bad images.
/// </summary>
public sealed class ErofsImage : IDisposable
{
    private const int BlockSize = ErofsFormat.BlockSize;
    /// <summary>Bounds for sizes that would otherwise let a hostile image ask for absurd work.</summary>
    private const long MaxDirectorySize = 1L << 30;

    private readonly IBlockSource _source;
    private readonly IDeviceResolver? _resolver;
    private readonly IBlockSource?[] _devices;
    private readonly ushort _deviceIdMask;

    public SuperBlock SuperBlock { get; }
    public IReadOnlyList<DeviceSlot> Devices { get; }
    public string DisplayName => _source.Name;
    public ulong RootNid => SuperBlock.RootNid;
    public long ImageBlocks => _source.Length >> ErofsFormat.BlockSizeBits;

    private ErofsImage(IBlockSource source, IDeviceResolver? resolver)
    {
        _source = source;
        _resolver = resolver;
        if (source.Length < BlockSize)
            throw new ImageCorruptException($"{source.Name}: {source.Length} bytes is too small for an EROFS image");
        var block0 = new byte[BlockSize];
        source.ReadExactly(0, block0);
        var sb = SuperBlock.Read(block0.AsSpan(ErofsFormat.SuperOffset));
        if (sb.Magic != ErofsFormat.SuperMagic)
            throw new ImageCorruptException($"{source.Name}: not an EROFS image (magic 0x{sb.Magic:x8} at offset {ErofsFormat.SuperOffset})");
        if (sb.BlockSizeBits != ErofsFormat.BlockSizeBits)
            throw new ImageUnsupportedException($"{source.Name}: block size 2^{sb.BlockSizeBits} is not supported (only 4096)");
        if ((sb.FeatureCompat & ErofsFormat.FeatureCompatSbChecksum) != 0)
        {
            uint crc = SuperBlock.ComputeChecksum(block0.AsSpan(ErofsFormat.SuperOffset, SuperBlock.ChecksumLength));
            if (crc != sb.Checksum)
                throw new ImageCorruptException($"{source.Name}: superblock checksum 0x{sb.Checksum:x8} does not match 0x{crc:x8}; the image is damaged");
        }
        uint unsupported = sb.FeatureIncompat & ~ErofsFormat.SupportedIncompat;
        if (unsupported != 0)
            throw new ImageUnsupportedException($"{source.Name}: uses features Rafs cannot read yet ({ErofsFormat.FeatureNames(0, unsupported)}); compressed images are not supported");
        if (sb.DirBlockBits != 0)
            throw new ImageUnsupportedException($"{source.Name}: directory block size bits {sb.DirBlockBits} not supported");
        if (sb.SbExtSlots != 0)
            throw new ImageUnsupportedException($"{source.Name}: superblock extension slots are not supported");
        long blocks = source.Length >> ErofsFormat.BlockSizeBits;
        if (sb.MetaBlockAddress >= blocks || sb.XattrBlockAddress >= blocks)
            throw new ImageCorruptException($"{source.Name}: metadata block {sb.MetaBlockAddress} or xattr block {sb.XattrBlockAddress} is past the end ({blocks} blocks)");
        SuperBlock = sb;

        var slots = new List<DeviceSlot>(sb.ExtraDevices);
        long tableOffset = (long)sb.DeviceTableSlotOffset * DeviceSlot.Size;
        if (sb.ExtraDevices > 0)
        {
            if (tableOffset < ErofsFormat.SuperOffset + SuperBlock.Size || tableOffset + (long)sb.ExtraDevices * DeviceSlot.Size > source.Length)
                throw new ImageCorruptException($"{source.Name}: device table of {sb.ExtraDevices} slots at offset {tableOffset} is out of bounds");
            var slot = new byte[DeviceSlot.Size];
            for (int i = 0; i < sb.ExtraDevices; i++)
            {
                source.ReadExactly(tableOffset + (long)i * DeviceSlot.Size, slot);
                slots.Add(DeviceSlot.Read(slot));
            }
        }
        Devices = slots;
        _devices = new IBlockSource?[slots.Count];
        _deviceIdMask = (ushort)(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)slots.Count + 1) - 1);
        RootInode = ReadInode(sb.RootNid);
        if (!RootInode.IsDirectory)
            throw new ImageCorruptException($"{source.Name}: root nid {sb.RootNid} is not a directory");
    }

    public ErofsInode RootInode { get; }

    public static ErofsImage Open(string path, IDeviceResolver? devices = null) =>
        Open(new FileBlockSource(path), devices);

    public static ErofsImage Open(IBlockSource source, IDeviceResolver? devices = null)
    {
        try
        {
            return new ErofsImage(source, devices);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    public ErofsInode ReadInode(ulong nid)
    {
        long metaBase = (long)SuperBlock.MetaBlockAddress * BlockSize;
        if (nid > (ulong)(_source.Length >> ErofsFormat.InodeSlotBits))
            throw Corrupt($"nid {nid} is beyond the image");
        long offset = metaBase + (long)(nid << ErofsFormat.InodeSlotBits);
        if (offset + InodeCompact.Size > _source.Length)
            throw Corrupt($"nid {nid}: inode at offset {offset} is past the end of the image");
        Span<byte> raw = stackalloc byte[InodeExtended.Size];
        int available = (int)Math.Min(InodeExtended.Size, _source.Length - offset);
        _source.ReadExactly(offset, raw[..available]);
        ushort format = BinaryPrimitives.ReadUInt16LittleEndian(raw);
        if ((format & ~InodeFormat.AllBits) != 0)
            throw new ImageUnsupportedException($"{DisplayName}: nid {nid} has unknown i_format bits 0x{format:x4}");
        if (InodeFormat.IsExtended(format) && available < InodeExtended.Size)
            throw Corrupt($"nid {nid}: extended inode is cut off by the end of the image");
        var disk = DiskInode.Read(raw, SuperBlock.BuildTime, SuperBlock.BuildTimeNsec);
        var inode = new ErofsInode(nid, offset, disk);
        Validate(inode);
        return inode;
    }

    private void Validate(ErofsInode inode)
    {
        ulong nid = inode.Nid;
        switch (inode.Layout)
        {
            case InodeDataLayout.CompressedFull or InodeDataLayout.CompressedCompact:
                throw new ImageUnsupportedException($"{DisplayName}: nid {nid} is compressed; compressed images are not supported yet");
            case > InodeDataLayout.ChunkBased:
                throw new ImageUnsupportedException($"{DisplayName}: nid {nid} has unknown data layout {(int)inode.Layout}");
        }
        if (!UnixMode.IsValidType(inode.Mode))
            throw Corrupt($"nid {nid}: bogus mode 0{Convert.ToString(inode.Mode, 8)}");
        if (inode.Size < 0)
            throw Corrupt($"nid {nid}: negative size");
        if (inode.IsDirectory && inode.Size > MaxDirectorySize)
            throw Corrupt($"nid {nid}: directory size {inode.Size} is absurd");
        if (inode.IsSymlink && (inode.Size == 0 || inode.Size > ErofsFormat.SymlinkMaxLength))
            throw Corrupt($"nid {nid}: symlink target length {inode.Size} is out of range 1..{ErofsFormat.SymlinkMaxLength}");
        if (inode.Type is UnixMode.CharDevice or UnixMode.BlockDevice or UnixMode.Fifo or UnixMode.Socket)
        {
            if (inode.Size != 0) throw Corrupt($"nid {nid}: special file with size {inode.Size}");
            return;
        }
        if (inode.InlineOffset > _source.Length)
            throw Corrupt($"nid {nid}: xattrs run past the end of the image");
        long blocks = inode.Blocks;
        switch (inode.Layout)
        {
            case InodeDataLayout.FlatPlain:
                if (blocks > 0 && (long)inode.RawBlockAddress + blocks > ImageBlocks)
                    throw Corrupt($"nid {nid}: data blocks {inode.RawBlockAddress}+{blocks} are past the end ({ImageBlocks} blocks)");
                break;
            case InodeDataLayout.FlatInline:
                if (blocks == 0) break;
                long tail = inode.Size - ((blocks - 1) << ErofsFormat.BlockSizeBits);
                if ((inode.InlineOffset % BlockSize) + tail > BlockSize)
                    throw Corrupt($"nid {nid}: inline data crosses a block boundary");
                if (inode.InlineOffset + tail > _source.Length)
                    throw Corrupt($"nid {nid}: inline data is past the end of the image");
                if (blocks > 1 && (long)inode.RawBlockAddress + blocks - 1 > ImageBlocks)
                    throw Corrupt($"nid {nid}: data blocks {inode.RawBlockAddress}+{blocks - 1} are past the end ({ImageBlocks} blocks)");
                break;
            case InodeDataLayout.ChunkBased:
                var chunk = inode.Disk.Chunk;
                if ((chunk.Format & ~ErofsFormat.ChunkFormatAll) != 0)
                    throw new ImageUnsupportedException($"{DisplayName}: nid {nid} has unknown chunk format 0x{chunk.Format:x}");
                long chunks = ChunkCount(inode);
                long end = IndexBase(inode) + chunks * chunk.IndexEntrySize;
                if (end > _source.Length || end < 0)
                    throw Corrupt($"nid {nid}: {chunks} chunk indexes run past the end of the image");
                break;
        }
    }

    private static long ChunkCount(ErofsInode inode)
    {
        int bits = inode.Disk.Chunk.ChunkSizeBits;
        return bits >= 63 ? (inode.Size > 0 ? 1 : 0) : (long)(((ulong)inode.Size + (1UL << bits) - 1) >> bits);
    }

    private static long IndexBase(ErofsInode inode)
    {
        int unit = inode.Disk.Chunk.IndexEntrySize;
        return (inode.InlineOffset + unit - 1) / unit * unit;
    }

    /// <summary>Maps the file's data into extents, in logical order.</summary>
    public IEnumerable<FileExtent> MapExtents(ErofsInode inode)
    {
        if (inode.Size == 0 || !(inode.IsRegular || inode.IsDirectory || inode.IsSymlink)) yield break;
        for (long logical = 0; logical < inode.Size;)
        {
            var extent = Map(inode, logical);
            yield return extent;
            logical += extent.Length;
        }
    }

    /// <summary>The extent containing <paramref name="logical"/>, as the kernel's erofs_map_blocks finds it.</summary>
    public FileExtent Map(ErofsInode inode, long logical)
    {
        long size = inode.Size;
        if (logical < 0 || logical >= size) throw new ArgumentOutOfRangeException(nameof(logical));
        if (inode.Layout == InodeDataLayout.ChunkBased)
        {
            var info = inode.Disk.Chunk;
            int bits = info.ChunkSizeBits;
            long chunkNr = logical >> bits;
            long chunkStart = chunkNr << bits;
            long length = Math.Min(size, chunkStart + (1L << bits)) - logical;
            Span<byte> entry = stackalloc byte[ChunkIndex.Size];
            long at = IndexBase(inode) + chunkNr * info.IndexEntrySize;
            int device;
            uint blkaddr;
            if (info.HasIndexes)
            {
                _source.ReadExactly(at, entry);
                var index = ChunkIndex.Read(entry);
                device = index.DeviceId & _deviceIdMask;
                blkaddr = index.BlockAddress;
            }
            else
            {
                _source.ReadExactly(at, entry[..ErofsFormat.BlockMapEntrySize]);
                device = 0;
                blkaddr = BinaryPrimitives.ReadUInt32LittleEndian(entry);
            }
            if (blkaddr == ErofsFormat.NullAddress) return new FileExtent(logical, length, 0, 0, true);
            if (device > Devices.Count)
                throw Corrupt($"nid {inode.Nid}: chunk {chunkNr} names device {device}, the image has {Devices.Count}");
            return new FileExtent(logical, length, device, ((long)blkaddr << ErofsFormat.BlockSizeBits) + (logical - chunkStart), false);
        }
        long blocks = inode.Blocks;
        bool inline = inode.Layout == InodeDataLayout.FlatInline;
        long lastBlockStart = (blocks - 1) << ErofsFormat.BlockSizeBits;
        if (inline && logical >= lastBlockStart)
            return new FileExtent(logical, size - logical, 0, inode.InlineOffset + (logical - lastBlockStart), false);
        long end = inline ? lastBlockStart : size;
        return new FileExtent(logical, end - logical, 0, ((long)inode.RawBlockAddress << ErofsFormat.BlockSizeBits) + logical, false);
    }

    /// <summary>Reads file data at <paramref name="offset"/>; returns the bytes read (0 at or past the end).</summary>
    public int ReadData(ErofsInode inode, long offset, Span<byte> buffer)
    {
        if (offset >= inode.Size || buffer.IsEmpty) return 0;
        int total = (int)Math.Min(buffer.Length, inode.Size - offset);
        int done = 0;
        while (done < total)
        {
            var extent = Map(inode, offset + done);
            int n = (int)Math.Min(extent.Length, total - done);
            var target = buffer.Slice(done, n);
            if (extent.IsHole) target.Clear();
            else SourceOf(extent.Device, inode).ReadExactly(extent.Physical, target);
            done += n;
        }
        return total;
    }

    public IBlockSource SourceOf(int device, ErofsInode? forInode = null)
    {
        if (device == 0) return _source;
        int index = device - 1;
        if (_devices[index] is { } open) return open;
        if (_resolver is null)
            throw new ImageUnsupportedException($"{DisplayName}: {(forInode is null ? "" : $"nid {forInode.Nid} ")}needs blob {Devices[index].Tag} (device {device}): pass --blob-dir");
        lock (_devices)   // readers on several threads (FUSE) must open a device once
        {
            if (_devices[index] is { } raced) return raced;
            return _devices[index] = _resolver.Open(index, Devices[index]);
        }
    }

    public byte[] ReadSymlink(ErofsInode inode)
    {
        if (!inode.IsSymlink) throw new ArgumentException($"nid {inode.Nid} is not a symlink");
        var target = new byte[inode.Size];
        ReadData(inode, 0, target);
        if (Array.IndexOf(target, (byte)0) >= 0) throw Corrupt($"nid {inode.Nid}: symlink target contains a NUL byte");
        return target;
    }

    /// <summary>Directory entries in on-disk order (sorted), "." and ".." included.</summary>
    public List<DirEntry> ReadDirectory(ErofsInode dir)
    {
        if (!dir.IsDirectory) throw new ArgumentException($"nid {dir.Nid} is not a directory");
        var result = new List<DirEntry>();
        var block = new byte[BlockSize];
        byte[]? previous = null;
        string where = $"{DisplayName}: directory nid {dir.Nid}";
        for (long start = 0; start < dir.Size; start += BlockSize)
        {
            int valid = (int)Math.Min(BlockSize, dir.Size - start);
            ReadData(dir, start, block.AsSpan(0, valid));
            foreach (var entry in DirectoryBlocks.DecodeBlock(block.AsSpan(0, valid), where))
            {
                if (previous is not null && DirectoryBlocks.CompareNames(previous, entry.Name) >= 0)
                    throw Corrupt($"directory nid {dir.Nid}: entries are not sorted at '{entry.NameString}'");
                if (entry.Name.AsSpan().IndexOfAny((byte)'/', (byte)0) >= 0)
                    throw Corrupt($"directory nid {dir.Nid}: entry name contains '/' or NUL");
                previous = entry.Name;
                result.Add(entry);
            }
        }
        return result;
    }

    /// <summary>Follows a "/"-separated path from the root without following symlinks; null when absent.</summary>
    public ErofsInode? Lookup(string path)
    {
        var inode = RootInode;
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!inode.IsDirectory) return null;
            var name = Encoding.UTF8.GetBytes(part);
            var entry = ReadDirectory(inode).FirstOrDefault(e => e.Name.AsSpan().SequenceEqual(name));
            if (entry.Name is null) return null;
            inode = ReadInode(entry.Nid);
        }
        return inode;
    }

    public ErofsInode ReadInodeAt(string path) =>
        Lookup(path) ?? throw new FileNotFoundException($"{path}: no such file in {DisplayName}");

    /// <summary>All xattrs of an inode (inline and shared), sorted by full name.</summary>
    public List<KeyValuePair<string, byte[]>> ReadXattrs(ErofsInode inode)
    {
        var result = new List<KeyValuePair<string, byte[]>>();
        int bodySize = inode.Disk.XattrBodySize;
        if (bodySize == 0) return result;
        if (bodySize <= XattrIbodyHeader.Size)
            throw Corrupt($"nid {inode.Nid}: xattr body of {bodySize} bytes has no room for entries");
        var body = new byte[bodySize];
        _source.ReadExactly(inode.XattrOffset, body);
        var header = XattrIbodyHeader.Read(body);
        int pos = XattrIbodyHeader.Size + 4 * header.SharedCount;
        if (pos > bodySize) throw Corrupt($"nid {inode.Nid}: {header.SharedCount} shared xattr ids overflow the xattr body");
        for (int i = 0; i < header.SharedCount; i++)
        {
            uint id = BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(XattrIbodyHeader.Size + 4 * i));
            long at = (long)SuperBlock.XattrBlockAddress * BlockSize + 4L * id;
            var head = new byte[XattrEntryHeader.Size];
            _source.ReadExactly(at, head);
            var h = XattrEntryHeader.Read(head);
            var entry = new byte[XattrEntryHeader.Size + h.NameLength + h.ValueSize];
            _source.ReadExactly(at, entry);
            result.Add(DecodeEntry(inode, h, entry));
        }
        while (pos < bodySize)
        {
            if (bodySize - pos < XattrEntryHeader.Size) throw Corrupt($"nid {inode.Nid}: truncated xattr entry");
            var h = XattrEntryHeader.Read(body.AsSpan(pos));
            if (pos + XattrEntryHeader.Size + h.NameLength + h.ValueSize > bodySize)
                throw Corrupt($"nid {inode.Nid}: xattr entry at body offset {pos} runs past the xattr body");
            result.Add(DecodeEntry(inode, h, body.AsSpan(pos, XattrEntryHeader.Size + h.NameLength + h.ValueSize)));
            pos += h.EntrySize;
        }
        result.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return result;
    }

    private KeyValuePair<string, byte[]> DecodeEntry(ErofsInode inode, XattrEntryHeader h, ReadOnlySpan<byte> entry)
    {
        if ((h.NameIndex & XattrPrefix.LongPrefixFlag) != 0)
            throw new ImageUnsupportedException($"{DisplayName}: nid {inode.Nid} uses long xattr name prefixes, not supported yet");
        if (XattrPrefix.PrefixOf(h.NameIndex) is null)
            throw Corrupt($"nid {inode.Nid}: xattr name index {h.NameIndex} is unknown");
        var suffix = entry.Slice(XattrEntryHeader.Size, h.NameLength);
        var value = entry.Slice(XattrEntryHeader.Size + h.NameLength, h.ValueSize).ToArray();
        return new(XattrPrefix.FullName(h.NameIndex, suffix), value);
    }

    private ImageCorruptException Corrupt(string message) => new($"{DisplayName}: {message}");

    public void Dispose()
    {
        foreach (var device in _devices) device?.Dispose();
        _source.Dispose();
    }
}
