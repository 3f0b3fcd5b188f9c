using System.Text;
using Rafs.Interop;

namespace Rafs.KernelTests;

public sealed record CompareOptions
{
    /// <summary>Skip comparing mtimes (e.g. of trees whose tool cannot keep them).</summary>
    public bool IgnoreMtime { get; init; }
    public bool IgnoreRootMtime { get; init; }
    /// <summary>Xattr names a side may lack (e.g. security.selinux added by the host).</summary>
    public IReadOnlySet<string> IgnoredXattrs { get; init; } = new HashSet<string> { "security.selinux" };
}

/// <summary>
/// Compares two trees as the kernel shows them: type, permission bits, owners, size, content, symlink target,
/// rdev, mtime (ns), xattrs, and hard-link groups. Returns human-readable differences; empty means equal.
/// </summary>
public static class TreeComparer
{
    public static List<string> Compare(string expectedRoot, string actualRoot, CompareOptions? options = null)
    {
        options ??= new CompareOptions();
        var diffs = new List<string>();
        var expected = Index(expectedRoot);
        var actual = Index(actualRoot);
        foreach (var rel in expected.Keys.Except(actual.Keys)) diffs.Add($"{rel}: missing");
        foreach (var rel in actual.Keys.Except(expected.Keys)) diffs.Add($"{rel}: unexpected");
        var buffers = (new byte[1 << 20], new byte[1 << 20]);
        foreach (var (rel, e) in expected)
        {
            if (!actual.TryGetValue(rel, out var a)) continue;
            void Diff(string what, object x, object y) { if (!Equals(x, y)) diffs.Add($"{rel}: {what} expected {x}, got {y}"); }
            Diff("type", e.Mode & 0xF000, a.Mode & 0xF000);
            if ((e.Mode & 0xF000) != (a.Mode & 0xF000)) continue;
            bool symlink = e.IsSymlink;
            if (!symlink) Diff("mode", Convert.ToString(e.Mode & 0xFFF, 8), Convert.ToString(a.Mode & 0xFFF, 8));
            Diff("uid", e.Uid, a.Uid);
            Diff("gid", e.Gid, a.Gid);
            if (!e.IsDirectory) Diff("size", e.Size, a.Size);
            Diff("nlink", e.IsDirectory ? 0 : e.Nlink, a.IsDirectory ? 0 : a.Nlink);
            if ((e.Mode & 0xF000) is 0x2000 or 0x6000) Diff("rdev", (e.RdevMajor, e.RdevMinor), (a.RdevMajor, a.RdevMinor));
            bool isRoot = rel == "/";
            if (!options.IgnoreMtime && !(isRoot && options.IgnoreRootMtime))
                Diff("mtime", (e.MtimeSeconds, e.MtimeNanoseconds), (a.MtimeSeconds, a.MtimeNanoseconds));
            var ep = Path.Join(expectedRoot, rel);
            var ap = Path.Join(actualRoot, rel);
            if (symlink) Diff("target", Encoding.UTF8.GetString(PosixFs.ReadLink(ep)), Encoding.UTF8.GetString(PosixFs.ReadLink(ap)));
            if (e.IsRegular && e.Size == a.Size && !SameContent(ep, ap, e.Size, buffers)) diffs.Add($"{rel}: content differs");
            var ex = Xattrs(ep, options);
            var ax = Xattrs(ap, options);
            if (ex != ax) diffs.Add($"{rel}: xattrs expected [{ex}], got [{ax}]");
        }
        // Hard links: names sharing an inode on one side must share one on the other.
        var eGroups = LinkGroups(expected);
        var aGroups = LinkGroups(actual);
        foreach (var g in eGroups.Except(aGroups)) diffs.Add($"hard-link group [{g}] not preserved");
        foreach (var g in aGroups.Except(eGroups)) diffs.Add($"unexpected hard-link group [{g}]");
        return diffs;
    }

    public static string Format(List<string> diffs) =>
        diffs.Count == 0 ? "no differences" : $"{diffs.Count} differences:\n" + string.Join('\n', diffs.Take(50));

    public static void AssertSame(string expectedRoot, string actualRoot, CompareOptions? options = null)
    {
        var diffs = Compare(expectedRoot, actualRoot, options);
        Assert.True(diffs.Count == 0, $"{actualRoot} differs from {expectedRoot}: {Format(diffs)}");
    }

    private static Dictionary<string, FileStatus> Index(string root)
    {
        var result = new Dictionary<string, FileStatus>(StringComparer.Ordinal) { ["/"] = PosixFs.LStat(root) };
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var path in Directory.EnumerateFileSystemEntries(dir))
            {
                var st = PosixFs.LStat(path);
                result["/" + Path.GetRelativePath(root, path)] = st;
                if (st.IsDirectory) pending.Push(path);
            }
        }
        return result;
    }

    private static string Xattrs(string path, CompareOptions options) =>
        string.Join("; ", PosixFs.ListXattrs(path).Where(x => !options.IgnoredXattrs.Contains(x.Key))
            .Select(x => $"{x.Key}={Convert.ToHexString(x.Value)[..Math.Min(64, x.Value.Length * 2)]}#{x.Value.Length}#{Hash(x.Value)}"));

    private static string Hash(byte[] value) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(value))[..16];

    private static HashSet<string> LinkGroups(Dictionary<string, FileStatus> index) =>
        index.Where(kv => !kv.Value.IsDirectory && kv.Value.Nlink > 1)
            .GroupBy(kv => kv.Value.Inode)
            .Select(g => string.Join(", ", g.Select(kv => kv.Key).Order(StringComparer.Ordinal)))
            .ToHashSet();

    private static bool SameContent(string expected, string actual, long size, (byte[] A, byte[] B) buffers)
    {
        using var e = File.OpenHandle(expected);
        using var a = File.OpenHandle(actual);
        // Ranges that are holes in the expected file must read as zeros on the other side.
        var extents = PosixFs.DataExtents(e, size);
        long position = 0;
        foreach (var (offset, length) in extents.Append((size, 0)))
        {
            if (!RangeIsZero(a, position, offset - position, buffers.B)) return false;
            if (!RangesEqual(e, a, offset, length, buffers)) return false;
            position = offset + length;
        }
        return true;
    }

    private static bool RangeIsZero(Microsoft.Win32.SafeHandles.SafeFileHandle file, long offset, long length, byte[] buffer)
    {
        for (long done = 0; done < length;)
        {
            int n = RandomAccess.Read(file, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - done)), offset + done);
            if (n <= 0 || buffer.AsSpan(0, n).ContainsAnyExcept((byte)0)) return false;
            done += n;
        }
        return true;
    }

    private static bool RangesEqual(Microsoft.Win32.SafeHandles.SafeFileHandle x, Microsoft.Win32.SafeHandles.SafeFileHandle y, long offset, long length, (byte[] A, byte[] B) buffers)
    {
        for (long done = 0; done < length;)
        {
            int want = (int)Math.Min(buffers.A.Length, length - done);
            int nx = ReadFull(x, buffers.A.AsSpan(0, want), offset + done);
            int ny = ReadFull(y, buffers.B.AsSpan(0, want), offset + done);
            if (nx != want || ny != want || !buffers.A.AsSpan(0, want).SequenceEqual(buffers.B.AsSpan(0, want))) return false;
            done += want;
        }
        return true;
    }

    private static int ReadFull(Microsoft.Win32.SafeHandles.SafeFileHandle file, Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(file, buffer[total..], offset + total);
            if (n <= 0) break;
            total += n;
        }
        return total;
    }
}
