using System.Buffers.Binary;

namespace Rafs.Format;

/// <summary>struct erofs_dirent (12 bytes). Names follow the dirent array of each directory block.</summary>
public readonly record struct Dirent(ulong Nid, ushort NameOffset, ErofsFileType FileType)
{
    public const int Size = 12;

    public static Dirent Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(b),
        BinaryPrimitives.ReadUInt16LittleEndian(b[8..]),
        (ErofsFileType)b[10]);

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(b, Nid);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], NameOffset);
        b[10] = (byte)FileType;
        b[11] = 0;
    }
}
