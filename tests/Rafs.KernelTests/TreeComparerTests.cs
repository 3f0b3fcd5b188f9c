using Rafs.Interop;

namespace Rafs.KernelTests;

/// <summary>The comparer is the judge of every kernel test, so it must see each kind of difference.</summary>
public sealed class TreeComparerTests
{
    [Fact]
    public void SeesEveryKindOfDifference()
    {
        using var scratch = new Scratch();
        var a = scratch.PathOf("a");
        RichTree.Create(a, new RichTreeOptions { HugeSparseFiles = false, MaxLengthNames = false });
        var b = scratch.PathOf("b");
        Tools.Ok("cp", "-a", a, b);
        Assert.Empty(TreeComparer.Compare(a, b));

        File.WriteAllText(Path.Combine(b, "sizes/file-1"), "X");                      // content (same size)
        PosixFs.SetTimes(Path.Combine(b, "sizes/file-0"), -1234567890, 123456788);      // one nanosecond
        PosixFs.Chmod(Path.Combine(b, "modes/setuid"), 0x1ED);                          // setuid bit lost
        PosixFs.LChown(Path.Combine(b, "owners/huge"), 4000000000, 7);                   // gid
        PosixFs.SetXattr(Path.Combine(b, "small"), "user.on-a-dir", "changed"u8);       // xattr value
        File.Delete(Path.Combine(b, "hard2/third"));
        File.Copy(Path.Combine(b, "hard/original"), Path.Combine(b, "hard2/third"));     // link group broken
        File.Delete(Path.Combine(b, "links/short"));
        PosixFs.Symlink("../sizes/file-2"u8, Path.Combine(b, "links/short"));            // target
        File.Delete(Path.Combine(b, "unicode/emoji-🦀🐧"));                                // missing

        var diffs = string.Join('\n', TreeComparer.Compare(a, b));
        foreach (var expected in new[] { "/sizes/file-1: content", "/sizes/file-0: mtime", "/modes/setuid: mode", "/owners/huge: gid",
                     "/small: xattrs", "hard-link group", "/links/short: target", "/unicode/emoji-🦀🐧: missing" })
            Assert.Contains(expected, diffs);
    }
}
