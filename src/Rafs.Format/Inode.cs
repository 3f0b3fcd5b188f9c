using System.Buffers.Binary;

namespace Rafs.Format;

/// <summary>Helpers for i_format: bit 0 is the on-disk inode version, bits 1..3 the data layout.</summary>
public static class InodeFormat
{
    public const int VersionMask = 0x1;
    public const int DataLayoutBit = 1;
    public const int DataLayoutMask = 0x7;
    /// <summary>Bits the kernel accepts in i_format.</summary>
    public const int AllBits = 0xF;

    public static ushort Make(bool extended, InodeDataLayout layout) =>
        (ushort)((extended ? 1 : 0) | ((int)layout << DataLayoutBit));
    public static bool IsExtended(ushort format) => (format & VersionMask) != 0;
    public static InodeDataLayout Layout(ushort format) => (InodeDataLayout)((format >> DataLayoutBit) & DataLayoutMask);

    /// <summary>erofs_xattr_ibody_size: 0 when icount is 0, else the 12-byte header plus (icount - 1) 4-byte words.</summary>
    public static int XattrBodySize(ushort xattrICount) =>
        xattrICount == 0 ? 0 : XattrIbodyHeader.Size + 4 * (xattrICount - 1);
    public static ushort XattrICount(int bodySize) =>
        bodySize == 0 ? (ushort)0 : checked((ushort)((bodySize - XattrIbodyHeader.Size) / 4 + 1));
}

/// <summary>struct erofs_inode_compact (32 bytes). Its mtime is the superblock's build time.</summary>
public readonly record struct InodeCompact(
    ushort Format, ushort XattrICount, ushort Mode, ushort Nlink, uint FileSize, uint U, uint Ino, ushort Uid, ushort Gid)
{
    public const int Size = 32;

    public static InodeCompact Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt16LittleEndian(b),
        BinaryPrimitives.ReadUInt16LittleEndian(b[2..]),
        BinaryPrimitives.ReadUInt16LittleEndian(b[4..]),
        BinaryPrimitives.ReadUInt16LittleEndian(b[6..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[8..]),
        // b[12..16] is i_reserved (newer kernels: mtime offset from build time; Rafs writes 0)
        BinaryPrimitives.ReadUInt32LittleEndian(b[16..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[20..]),
        BinaryPrimitives.ReadUInt16LittleEndian(b[24..]),
        BinaryPrimitives.ReadUInt16LittleEndian(b[26..]));

    public void Write(Span<byte> b)
    {
        b[..Size].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(b, Format);
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], XattrICount);
        BinaryPrimitives.WriteUInt16LittleEndian(b[4..], Mode);
        BinaryPrimitives.WriteUInt16LittleEndian(b[6..], Nlink);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], FileSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[16..], U);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], Ino);
        BinaryPrimitives.WriteUInt16LittleEndian(b[24..], Uid);
        BinaryPrimitives.WriteUInt16LittleEndian(b[26..], Gid);
    }
}

/// <summary>struct erofs_inode_extended (64 bytes): 64-bit size, 32-bit ids and nlink, own mtime.</summary>
public readonly record struct InodeExtended(
    ushort Format, ushort XattrICount, ushort Mode, ulong FileSize, uint U, uint Ino, uint Uid, uint Gid,
    long Mtime, uint MtimeNsec, uint Nlink)
{
    public const int Size = 64;

    public static InodeExtended Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt16LittleEndian(b),
        BinaryPrimitives.ReadUInt16LittleEndian(b[2..]),
        BinaryPrimitives.ReadUInt16LittleEndian(b[4..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[16..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[20..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[24..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[28..]),
        BinaryPrimitives.ReadInt64LittleEndian(b[32..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[40..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[44..]));

    public void Write(Span<byte> b)
    {
        b[..Size].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(b, Format);
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], XattrICount);
        BinaryPrimitives.WriteUInt16LittleEndian(b[4..], Mode);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], FileSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[16..], U);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], Ino);
        BinaryPrimitives.WriteUInt32LittleEndian(b[24..], Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(b[28..], Gid);
        BinaryPrimitives.WriteInt64LittleEndian(b[32..], Mtime);
        BinaryPrimitives.WriteUInt32LittleEndian(b[40..], MtimeNsec);
        BinaryPrimitives.WriteUInt32LittleEndian(b[44..], Nlink);
    }
}

/// <summary>
/// An on-disk inode of either form, normalised: what the kernel's erofs_read_inode derives.
/// <see cref="U"/> is the raw i_u union: raw_blkaddr, rdev or chunk info depending on mode and layout.
/// </summary>
public readonly record struct DiskInode(
    bool Extended, InodeDataLayout Layout, ushort XattrICount, int Mode, uint Nlink, ulong FileSize,
    uint U, uint Ino, uint Uid, uint Gid, long Mtime, uint MtimeNsec)
{
    public int CoreSize => Extended ? InodeExtended.Size : InodeCompact.Size;
    public int XattrBodySize => InodeFormat.XattrBodySize(XattrICount);
    public ChunkInfo Chunk => new((ushort)U);

    /// <summary>Reads the 2-byte format first to know which form follows; needs 64 bytes for extended inodes.</summary>
    public static bool PeekExtended(ReadOnlySpan<byte> b) => InodeFormat.IsExtended(BinaryPrimitives.ReadUInt16LittleEndian(b));

    public static DiskInode Read(ReadOnlySpan<byte> b, ulong buildTime, uint buildTimeNsec)
    {
        ushort format = BinaryPrimitives.ReadUInt16LittleEndian(b);
        if (InodeFormat.IsExtended(format))
        {
            var e = InodeExtended.Read(b);
            return new DiskInode(true, InodeFormat.Layout(format), e.XattrICount, e.Mode, e.Nlink, e.FileSize,
                e.U, e.Ino, e.Uid, e.Gid, e.Mtime, e.MtimeNsec);
        }
        var c = InodeCompact.Read(b);
        return new DiskInode(false, InodeFormat.Layout(format), c.XattrICount, c.Mode, c.Nlink, c.FileSize,
            c.U, c.Ino, c.Uid, c.Gid, (long)buildTime, buildTimeNsec);
    }

    /// <summary>
    /// True when the 32-byte form holds every field exactly: ids and nlink within 16 bits, size below 4 GiB,
    /// and mtime equal to the image's build time (compact inodes carry no mtime of their own).
    /// </summary>
    public bool FitsCompact(long buildTime, uint buildTimeNsec) =>
        Uid <= ushort.MaxValue && Gid <= ushort.MaxValue && Nlink <= ushort.MaxValue &&
        FileSize <= uint.MaxValue && Mtime == buildTime && MtimeNsec == buildTimeNsec;

    public void Write(Span<byte> b)
    {
        ushort format = InodeFormat.Make(Extended, Layout);
        if (Extended)
            new InodeExtended(format, XattrICount, (ushort)Mode, FileSize, U, Ino, Uid, Gid, Mtime, MtimeNsec, Nlink).Write(b);
        else
            new InodeCompact(format, XattrICount, (ushort)Mode, checked((ushort)Nlink), checked((uint)FileSize), U, Ino,
                checked((ushort)Uid), checked((ushort)Gid)).Write(b);
    }
}
