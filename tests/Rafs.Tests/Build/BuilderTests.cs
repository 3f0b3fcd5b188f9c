using Rafs.Build;
using Rafs.Format;
using Rafs.Image;
using Rafs.Interop;

namespace Rafs.Tests.Build;

/// <summary>Layout decisions of the builder, read back with our reader (the kernel tests check the same images mount).</summary>
public sealed class BuilderTests : IDisposable
{
    private readonly string _root = Path.Combine("/var/tmp", $"rafs-unit-{Guid.NewGuid():N}"[..22]);

    public BuilderTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Src(string rel, string content = "x")
    {
        var path = Path.Combine(_root, "src", rel);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    private ErofsImage Build(long timestamp = 1700000000)
    {
        var image = Path.Combine(_root, "out.img");
        ImageBuilder.BuildImage(DirectoryScanner.Scan(Path.Combine(_root, "src")), image, new BuildOptions { Timestamp = timestamp });
        return ErofsImage.Open(image);
    }

    [Fact]
    public void InodesAreCompactOnlyWhenEveryFieldFits()
    {
        PosixFs.SetTimes(Src("at-build-time"), 1700000000, 0);
        PosixFs.SetTimes(Src("other-second"), 1700000001, 0);
        PosixFs.SetTimes(Src("other-nanosecond"), 1700000000, 1);
        var bigUid = Src("big-uid");
        PosixFs.LChown(bigUid, 70000, 0);
        PosixFs.SetTimes(bigUid, 1700000000, 0);
        using var image = Build();
        Assert.False(image.ReadInodeAt("at-build-time").Disk.Extended);
        Assert.True(image.ReadInodeAt("other-second").Disk.Extended);
        Assert.True(image.ReadInodeAt("other-nanosecond").Disk.Extended);
        Assert.True(image.ReadInodeAt("big-uid").Disk.Extended);
        Assert.Equal(70000u, image.ReadInodeAt("big-uid").Disk.Uid);
    }

    [Fact]
    public void IdenticalXattrsAreSharedAndOthersInline()
    {
        for (int i = 0; i < 3; i++)
        {
            var f = Src($"f{i}");
            PosixFs.SetXattr(f, "user.same", "shared value"u8);
            PosixFs.SetXattr(f, "user.own", System.Text.Encoding.ASCII.GetBytes($"own {i}"));
        }
        using var image = Build();
        Assert.NotEqual(0u, image.SuperBlock.XattrBlockAddress);
        for (int i = 0; i < 3; i++)
        {
            var inode = image.ReadInodeAt($"f{i}");
            var header = new byte[XattrIbodyHeader.Size];
            using var file = File.OpenHandle(Path.Combine(_root, "out.img"));
            RandomAccess.Read(file, header, inode.XattrOffset);
            Assert.Equal(1, XattrIbodyHeader.Read(header).SharedCount);
            var xattrs = image.ReadXattrs(inode);
            Assert.Equal(["user.own", "user.same"], xattrs.Select(x => x.Key));
            Assert.Equal($"own {i}", System.Text.Encoding.ASCII.GetString(xattrs[0].Value));
        }
    }

    [Fact]
    public void TailsAreInlinedAndSparseFilesBecomeChunkedWithHoles()
    {
        Src("small", "short tail");
        Src("exact", new string('b', 8192));
        var sparse = Path.Combine(_root, "src", "sparse");
        using (var f = File.OpenHandle(sparse, FileMode.Create, FileAccess.Write))
        {
            RandomAccess.SetLength(f, 100 << 20);
            RandomAccess.Write(f, "data"u8, 50 << 20);
        }
        using var image = Build();
        Assert.Equal(InodeDataLayout.FlatInline, image.ReadInodeAt("small").Layout);
        Assert.Equal(InodeDataLayout.FlatPlain, image.ReadInodeAt("exact").Layout);
        var chunked = image.ReadInodeAt("sparse");
        Assert.Equal(InodeDataLayout.ChunkBased, chunked.Layout);
        var extents = image.MapExtents(chunked).ToList();
        Assert.Single(extents, e => !e.IsHole);
        Assert.True(new FileInfo(Path.Combine(_root, "out.img")).Length < 1 << 20);
        var buffer = new byte[4];
        image.ReadData(chunked, 50 << 20, buffer);
        Assert.Equal("data"u8.ToArray(), buffer);
    }

    [Fact]
    public void DirectoryEntriesAreSortedByBytesWithDotEntries()
    {
        foreach (var name in new[] { "b", "a", "!bang", "Z", "é", "a.b", "-" }) Src(name);
        using var image = Build();
        var names = image.ReadDirectory(image.RootInode).Select(e => e.NameString).ToList();
        Assert.Equal(names.OrderBy(n => System.Text.Encoding.UTF8.GetBytes(n), Comparer<byte[]>.Create((x, y) => x.AsSpan().SequenceCompareTo(y))), names);
        Assert.Contains(".", names);
        Assert.Contains("..", names);
        Assert.Equal(2u, image.RootInode.Disk.Nlink);
    }
}
