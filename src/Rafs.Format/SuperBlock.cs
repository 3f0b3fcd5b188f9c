using System.Buffers.Binary;

namespace Rafs.Format;

/// <summary>struct erofs_super_block (128 bytes at offset 1024).</summary>
public readonly record struct SuperBlock
{
    public const int Size = 128;
    /// <summary>The checksum covers the superblock to the end of block 0, checksum field zeroed.</summary>
    public const int ChecksumLength = ErofsFormat.BlockSize - ErofsFormat.SuperOffset;

    public uint Magic { get; init; }
    public uint Checksum { get; init; }
    public uint FeatureCompat { get; init; }
    public byte BlockSizeBits { get; init; }
    public byte SbExtSlots { get; init; }
    public ushort RootNid { get; init; }
    public ulong Inodes { get; init; }
    public ulong BuildTime { get; init; }
    public uint BuildTimeNsec { get; init; }
    public uint Blocks { get; init; }
    public uint MetaBlockAddress { get; init; }
    public uint XattrBlockAddress { get; init; }
    public Guid Uuid { get; init; }
    public string VolumeName { get; init; }
    public uint FeatureIncompat { get; init; }
    public ushort AvailableComprAlgs { get; init; }
    public ushort ExtraDevices { get; init; }
    /// <summary>Device table offset in units of <see cref="DeviceSlot.Size"/>.</summary>
    public ushort DeviceTableSlotOffset { get; init; }
    public byte DirBlockBits { get; init; }
    public byte XattrPrefixCount { get; init; }
    public uint XattrPrefixStart { get; init; }
    public ulong PackedNid { get; init; }

    public SuperBlock() { VolumeName = ""; Magic = ErofsFormat.SuperMagic; BlockSizeBits = ErofsFormat.BlockSizeBits; }

    public static SuperBlock Read(ReadOnlySpan<byte> b)
    {
        if (b.Length < Size) throw new ArgumentException("superblock buffer too small", nameof(b));
        return new SuperBlock
        {
            Magic = BinaryPrimitives.ReadUInt32LittleEndian(b),
            Checksum = BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
            FeatureCompat = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]),
            BlockSizeBits = b[12],
            SbExtSlots = b[13],
            RootNid = BinaryPrimitives.ReadUInt16LittleEndian(b[14..]),
            Inodes = BinaryPrimitives.ReadUInt64LittleEndian(b[16..]),
            BuildTime = BinaryPrimitives.ReadUInt64LittleEndian(b[24..]),
            BuildTimeNsec = BinaryPrimitives.ReadUInt32LittleEndian(b[32..]),
            Blocks = BinaryPrimitives.ReadUInt32LittleEndian(b[36..]),
            MetaBlockAddress = BinaryPrimitives.ReadUInt32LittleEndian(b[40..]),
            XattrBlockAddress = BinaryPrimitives.ReadUInt32LittleEndian(b[44..]),
            Uuid = new Guid(b.Slice(48, 16), bigEndian: true),
            VolumeName = ReadCString(b.Slice(64, 16)),
            FeatureIncompat = BinaryPrimitives.ReadUInt32LittleEndian(b[80..]),
            AvailableComprAlgs = BinaryPrimitives.ReadUInt16LittleEndian(b[84..]),
            ExtraDevices = BinaryPrimitives.ReadUInt16LittleEndian(b[86..]),
            DeviceTableSlotOffset = BinaryPrimitives.ReadUInt16LittleEndian(b[88..]),
            DirBlockBits = b[90],
            XattrPrefixCount = b[91],
            XattrPrefixStart = BinaryPrimitives.ReadUInt32LittleEndian(b[92..]),
            PackedNid = BinaryPrimitives.ReadUInt64LittleEndian(b[96..]),
        };
    }

    public void Write(Span<byte> b)
    {
        if (b.Length < Size) throw new ArgumentException("superblock buffer too small", nameof(b));
        b[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Checksum);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], FeatureCompat);
        b[12] = BlockSizeBits;
        b[13] = SbExtSlots;
        BinaryPrimitives.WriteUInt16LittleEndian(b[14..], RootNid);
        BinaryPrimitives.WriteUInt64LittleEndian(b[16..], Inodes);
        BinaryPrimitives.WriteUInt64LittleEndian(b[24..], BuildTime);
        BinaryPrimitives.WriteUInt32LittleEndian(b[32..], BuildTimeNsec);
        BinaryPrimitives.WriteUInt32LittleEndian(b[36..], Blocks);
        BinaryPrimitives.WriteUInt32LittleEndian(b[40..], MetaBlockAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(b[44..], XattrBlockAddress);
        Uuid.TryWriteBytes(b.Slice(48, 16), bigEndian: true, out _);
        var name = System.Text.Encoding.UTF8.GetBytes(VolumeName ?? "");
        name.AsSpan(0, Math.Min(name.Length, 16)).CopyTo(b.Slice(64, 16));
        BinaryPrimitives.WriteUInt32LittleEndian(b[80..], FeatureIncompat);
        BinaryPrimitives.WriteUInt16LittleEndian(b[84..], AvailableComprAlgs);
        BinaryPrimitives.WriteUInt16LittleEndian(b[86..], ExtraDevices);
        BinaryPrimitives.WriteUInt16LittleEndian(b[88..], DeviceTableSlotOffset);
        b[90] = DirBlockBits;
        b[91] = XattrPrefixCount;
        BinaryPrimitives.WriteUInt32LittleEndian(b[92..], XattrPrefixStart);
        BinaryPrimitives.WriteUInt64LittleEndian(b[96..], PackedNid);
    }

    /// <summary>crc32c of the block-0 tail starting at the superblock, with the checksum field taken as zero.</summary>
    public static uint ComputeChecksum(ReadOnlySpan<byte> fromSuperblockToBlockEnd)
    {
        Span<byte> head = stackalloc byte[8];
        fromSuperblockToBlockEnd[..8].CopyTo(head);
        head[4..8].Clear();
        uint crc = Crc32C.Compute(~0u, head);
        return Crc32C.Compute(crc, fromSuperblockToBlockEnd[8..]);
    }

    private static string ReadCString(ReadOnlySpan<byte> b)
    {
        int n = b.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(n < 0 ? b : b[..n]);
    }
}
