using System.Text;

namespace Rafs.Format;

/// <summary>One directory entry as the format sees it: raw name bytes, target nid and file type.</summary>
public readonly record struct DirEntry(byte[] Name, ulong Nid, ErofsFileType FileType)
{
    public string NameString => Encoding.UTF8.GetString(Name);
}

/// <summary>
/// Directory data: each block holds a dirent array followed by the names it points at. Entries are sorted by
/// name bytes across all blocks (the kernel binary-searches them); the first dirent's nameoff / 12 gives the
/// block's entry count, and the last name runs to the first NUL or the end of the data.
/// </summary>
public static class DirectoryBlocks
{
    /// <summary>Byte order of names, as the kernel's erofs_dirnamecmp compares them.</summary>
    public static int CompareNames(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => a.SequenceCompareTo(b);

    /// <summary>
    /// Splits sorted entries into blocks. Returns the entry count of each block; the total data size is
    /// (blocks - 1) full blocks plus the used part of the last block.
    /// </summary>
    public static List<int> Plan(IReadOnlyList<DirEntry> sorted, out long totalSize)
    {
        var counts = new List<int>();
        int used = 0, count = 0;
        foreach (var e in sorted)
        {
            int need = Dirent.Size + e.Name.Length;
            if (used + need > ErofsFormat.BlockSize)
            {
                counts.Add(count);
                used = 0;
                count = 0;
            }
            used += need;
            count++;
        }
        counts.Add(count);
        totalSize = (long)(counts.Count - 1) * ErofsFormat.BlockSize + used;
        return counts;
    }

    /// <summary>Encodes <paramref name="count"/> entries starting at <paramref name="first"/> into one block buffer; returns the bytes used.</summary>
    public static int EncodeBlock(IReadOnlyList<DirEntry> sorted, int first, int count, Span<byte> block)
    {
        int nameOffset = count * Dirent.Size;
        for (int i = 0; i < count; i++)
        {
            var e = sorted[first + i];
            new Dirent(e.Nid, checked((ushort)nameOffset), e.FileType).Write(block[(i * Dirent.Size)..]);
            e.Name.CopyTo(block[nameOffset..]);
            nameOffset += e.Name.Length;
        }
        return nameOffset;
    }

    /// <summary>
    /// Decodes one directory block of <paramref name="block"/>.Length valid bytes, checking every offset.
    /// <paramref name="where"/> names the directory for error messages.
    /// </summary>
    public static List<DirEntry> DecodeBlock(ReadOnlySpan<byte> block, string where)
    {
        if (block.Length < Dirent.Size)
            throw Throw.Corrupt($"{where}: directory block of {block.Length} bytes is too small for a dirent");
        var first = Dirent.Read(block);
        int nameOff0 = first.NameOffset;
        if (nameOff0 < Dirent.Size || nameOff0 % Dirent.Size != 0 || nameOff0 > block.Length)
            throw Throw.Corrupt($"{where}: bad first nameoff {nameOff0} in a {block.Length}-byte directory block");
        int count = nameOff0 / Dirent.Size;
        var result = new List<DirEntry>(count);
        for (int i = 0; i < count; i++)
        {
            var d = Dirent.Read(block[(i * Dirent.Size)..]);
            int start = d.NameOffset;
            int end = i + 1 < count ? Dirent.Read(block[((i + 1) * Dirent.Size)..]).NameOffset : block.Length;
            if (start < nameOff0 || end > block.Length || end <= start)
                throw Throw.Corrupt($"{where}: dirent {i} has name range [{start},{end}) outside the block");
            var name = block[start..end];
            if (i + 1 == count)
            {
                int nul = name.IndexOf((byte)0);
                if (nul == 0) throw Throw.Corrupt($"{where}: dirent {i} has an empty name");
                if (nul > 0) name = name[..nul];
            }
            if (name.Length > ErofsFormat.NameMaxLength)
                throw Throw.Corrupt($"{where}: dirent {i} name is {name.Length} bytes (max {ErofsFormat.NameMaxLength})");
            result.Add(new DirEntry(name.ToArray(), d.Nid, d.FileType));
        }
        return result;
    }
}
