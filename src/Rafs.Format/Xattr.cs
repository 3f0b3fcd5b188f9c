using System.Buffers.Binary;
using System.Text;

namespace Rafs.Format;

/// <summary>struct erofs_xattr_ibody_header (12 bytes), followed by h_shared_count 4-byte shared xattr ids.</summary>
public readonly record struct XattrIbodyHeader(uint NameFilter, byte SharedCount)
{
    public const int Size = 12;

    public static XattrIbodyHeader Read(ReadOnlySpan<byte> b) =>
        new(BinaryPrimitives.ReadUInt32LittleEndian(b), b[4]);

    public void Write(Span<byte> b)
    {
        b[..Size].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b, NameFilter);
        b[4] = SharedCount;
    }
}

/// <summary>struct erofs_xattr_entry (4 bytes) + name suffix + value, padded to 4 bytes.</summary>
public readonly record struct XattrEntryHeader(byte NameLength, byte NameIndex, ushort ValueSize)
{
    public const int Size = 4;

    public int EntrySize => AlignedSize(NameLength, ValueSize);
    public static int AlignedSize(int nameLength, int valueSize) => (Size + nameLength + valueSize + 3) & ~3;

    public static XattrEntryHeader Read(ReadOnlySpan<byte> b) =>
        new(b[0], b[1], BinaryPrimitives.ReadUInt16LittleEndian(b[2..]));

    public void Write(Span<byte> b)
    {
        b[0] = NameLength;
        b[1] = NameIndex;
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], ValueSize);
    }
}

/// <summary>
/// The short name prefixes (EROFS_XATTR_INDEX_*). A full name "user.foo" is stored as index 1 + suffix "foo".
/// </summary>
public static class XattrPrefix
{
    public const byte User = 1;
    public const byte PosixAclAccess = 2;
    public const byte PosixAclDefault = 3;
    public const byte Trusted = 4;
    public const byte Lustre = 5;
    public const byte Security = 6;
    public const byte LongPrefixFlag = 0x80;

    private static readonly (byte Index, byte[] Prefix)[] Prefixes =
    [
        (User, "user."u8.ToArray()),
        (PosixAclAccess, "system.posix_acl_access"u8.ToArray()),
        (PosixAclDefault, "system.posix_acl_default"u8.ToArray()),
        (Trusted, "trusted."u8.ToArray()),
        (Lustre, "lustre."u8.ToArray()),
        (Security, "security."u8.ToArray()),
    ];

    /// <summary>Splits a full xattr name into (index, suffix); false when no short prefix matches.</summary>
    public static bool TrySplit(ReadOnlySpan<byte> fullName, out byte index, out int prefixLength)
    {
        foreach (var (i, p) in Prefixes)
        {
            bool acl = i is PosixAclAccess or PosixAclDefault;
            if (acl ? fullName.SequenceEqual(p) : fullName.StartsWith(p))
            {
                index = i;
                prefixLength = p.Length;
                return true;
            }
        }
        index = 0;
        prefixLength = 0;
        return false;
    }

    public static byte[]? PrefixOf(byte index)
    {
        foreach (var (i, p) in Prefixes)
            if (i == index) return p;
        return null;
    }

    public static string FullName(byte index, ReadOnlySpan<byte> suffix)
    {
        var p = PrefixOf(index) ?? throw new ImageUnsupportedException($"unknown xattr name index {index}");
        return Encoding.UTF8.GetString(p) + Encoding.UTF8.GetString(suffix);
    }
}
