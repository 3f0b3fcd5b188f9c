using System.Text;
using Rafs.Interop;

namespace Rafs.KernelTests;

public sealed record RichTreeOptions
{
    /// <summary>A 1 GiB sparse file and a 5 GiB sparse file (data near 4 GiB and at the end).</summary>
    public bool HugeSparseFiles { get; init; } = true;
    /// <summary>255-byte names (Debian's mkfs.erofs 1.5 fails on them).</summary>
    public bool MaxLengthNames { get; init; } = true;
}

/// <summary>Generates a tree that exercises every EROFS feature Rafs must preserve. Deterministic content.</summary>
public static class RichTree
{
    private const int Reg = 0x8000, Chr = 0x2000, Blk = 0x6000, Fifo = 0x1000, Sock = 0xC000;

    /// <summary>
    /// <paramref name="count"/> files big-00, big-01, … of random data, 1 MiB + <paramref name="step"/> × i bytes
    /// (no two chunks alike), for tests that need an image where laziness shows.
    /// </summary>
    public static void BigRandomFiles(string root, int count, int step, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var data = new byte[(1 << 20) + step * i];
            random.NextBytes(data);
            File.WriteAllBytes(Path.Combine(root, $"big-{i:D2}"), data);
        }
    }

    public static void Create(string root, RichTreeOptions? options = null)
    {
        options ??= new RichTreeOptions();
        var random = new Random(1234);
        Directory.CreateDirectory(root);
        string P(string rel) => Path.Combine(root, rel);
        void Write(string rel, byte[] data) { Directory.CreateDirectory(Path.GetDirectoryName(P(rel))!); File.WriteAllBytes(P(rel), data); }
        byte[] Bytes(int n) { var b = new byte[n]; random.NextBytes(b); return b; }

        foreach (int size in new[] { 0, 1, 4095, 4096, 4097, 8191, 65536 + 123 })
            Write($"sizes/file-{size}", Bytes(size));
        Write("sizes/random-3m", Bytes(3 << 20));
        for (int i = 0; i < 300; i++) Write($"small/f{i:D3}.txt", Encoding.UTF8.GetBytes($"small file {i}\n" + new string('x', i * 7)));

        var dup = Bytes(3 << 20);
        Write("dup/a", dup);
        Write("dup/b", dup);
        var prefix = Bytes(2 << 20);
        Write("dup/prefix-1", [.. prefix, .. Bytes(100_000)]);
        Write("dup/prefix-2", [.. prefix, .. Bytes(200_000)]);

        Directory.CreateDirectory(P("empty-dir"));
        Directory.CreateDirectory(P("empty-dir2/nested-empty"));
        Directory.CreateDirectory(P("many"));
        for (int i = 0; i < 2000; i++) File.WriteAllText(P($"many/entry-with-a-longish-name-{i:D5}"), i.ToString());

        if (options.MaxLengthNames)
        {
            File.WriteAllText(P(new string('n', 255)), "255-byte name");
            Directory.CreateDirectory(P("long/" + new string('d', 255)));
            File.WriteAllText(P("long/" + new string('d', 255) + "/" + new string('é', 127) + "x"), "255 bytes of UTF-8");
        }
        Write("unicode/é-café.txt", "latin"u8.ToArray());
        Write("unicode/日本語のファイル", "cjk"u8.ToArray());
        Write("unicode/emoji-🦀🐧", "emoji"u8.ToArray());
        Write("unicode/!leading-bang", "sorts before ."u8.ToArray());

        var deep = string.Join('/', Enumerable.Range(0, 60).Select(i => $"d{i}"));
        Write($"deep/{deep}/leaf", "deep"u8.ToArray());

        Directory.CreateDirectory(P("links"));
        PosixFs.Symlink("../sizes/file-1"u8, P("links/short"));
        PosixFs.Symlink(Encoding.ASCII.GetBytes(string.Join('/', Enumerable.Repeat("abcdefg", 511)) + "/1234567"), P("links/long-4095"));
        PosixFs.Symlink("/absolute/target/that/does/not/exist"u8, P("links/dangling"));

        Directory.CreateDirectory(P("dev"));
        PosixFs.MakeNode(P("dev/null"), Chr | 0x1B6, 1, 3);
        PosixFs.MakeNode(P("dev/loop0"), Blk | 0x1B0, 7, 0);
        PosixFs.MakeNode(P("dev/big-minor"), Chr | 0x180, 259, 300000);
        PosixFs.MakeNode(P("dev/fifo"), Fifo | 0x1A4, 0, 0);
        PosixFs.MakeNode(P("dev/socket"), Sock | 0x1ED, 0, 0);

        Write("hard/original", Bytes(5000));
        Directory.CreateDirectory(P("hard2"));
        PosixFs.Link(P("hard/original"), P("hard/second"));
        PosixFs.Link(P("hard/original"), P("hard2/third"));

        Write("modes/setuid", "s"u8.ToArray()); PosixFs.Chmod(P("modes/setuid"), 0x9ED);   // 04755
        Write("modes/setgid", "g"u8.ToArray()); PosixFs.Chmod(P("modes/setgid"), 0x5ED);   // 02755
        Directory.CreateDirectory(P("modes/sticky")); PosixFs.Chmod(P("modes/sticky"), 0x3FF); // 01777
        Write("modes/none", "0"u8.ToArray()); PosixFs.Chmod(P("modes/none"), 0);

        foreach (var (name, uid, gid) in new[] { ("root", 0u, 0u), ("user", 1000u, 1000u), ("max16", 65535u, 65535u), ("big", 70000u, 70001u), ("huge", 4000000000u, 4000000001u) })
        {
            Write($"owners/{name}", Encoding.ASCII.GetBytes(name));
            PosixFs.LChown(P($"owners/{name}"), uid, gid);
        }
        PosixFs.LChown(P("links/short"), 1234, 5678);

        PosixFs.SetXattr(P("sizes/file-1"), "user.comment", "hello"u8);
        PosixFs.SetXattr(P("sizes/file-1"), "trusted.overlay.opaque", "y"u8);
        PosixFs.SetXattr(P("sizes/file-4097"), "security.capability", new byte[] { 1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 });
        // ext4 without ea_inode keeps all xattrs of an inode in one 4 KiB block, which bounds these sizes.
        PosixFs.SetXattr(P("sizes/file-4096"), "user." + new string('k', 200), Bytes(3000));
        PosixFs.SetXattr(P("sizes/random-3m"), "user.big", Bytes(3900));
        for (int i = 0; i < 10; i++)
        {
            PosixFs.SetXattr(P($"small/f{i:D3}.txt"), "user.shared-one", "the same value everywhere"u8);
            PosixFs.SetXattr(P($"small/f{i:D3}.txt"), "user.shared-two", "another shared value"u8);
        }
        PosixFs.SetXattr(P("small"), "user.on-a-dir", "dir xattr"u8);
        PosixFs.SetXattr(P("links/short"), "trusted.on-a-symlink", "symlink xattr"u8);

        if (options.HugeSparseFiles)
        {
            WriteSparse(P("sparse/1g"), 1L << 30, [(0, Bytes(8192)), ((512L << 20) + 100, Bytes(3000)), ((1L << 30) - 10, Bytes(10))]);
            WriteSparse(P("sparse/5g"), 5L << 30, [((4L << 30) + 17, Bytes(5000)), ((5L << 30) - 4096, Bytes(4096))]);
        }
        else
        {
            WriteSparse(P("sparse/64m"), 64L << 20, [(0, Bytes(8192)), ((32L << 20) + 100, Bytes(3000))]);
        }

        var times = new (string, long, uint)[]
        {
            ("sizes/file-0", -1234567890, 123456789), ("sizes/file-1", 4102444800, 999999999), ("sizes/file-4095", 0, 0),
            ("links/short", 1000000000, 1), ("dev/null", 1600000000, 500), ("hard/original", 1700000000, 42),
        };
        foreach (var (rel, s, ns) in times) PosixFs.SetTimes(P(rel), s, ns);
        // Directories last, deepest first, so creating their entries does not move their mtimes again.
        foreach (var dir in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
            PosixFs.SetTimes(dir, 1650000000 + dir.Length, (uint)dir.Length * 1000);
        PosixFs.SetTimes(root, 1650000000, 7);
    }

    private static void WriteSparse(string path, long size, (long Offset, byte[] Data)[] pieces)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
        RandomAccess.SetLength(file, size);
        foreach (var (offset, data) in pieces) RandomAccess.Write(file, data, offset);
    }
}
