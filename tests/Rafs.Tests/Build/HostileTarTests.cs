using System.Formats.Tar;
using Rafs.Build;
using Rafs.Image;

namespace Rafs.Tests.Build;

/// <summary>Hostile and damaged layer tars: refused with a message naming the layer and entry, or handled safely.</summary>
public sealed class HostileTarTests : IDisposable
{
    private readonly string _root = Path.Combine("/var/tmp", $"rafs-unit-{Guid.NewGuid():N}"[..22]);

    public HostileTarTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Tar(string name, params TarEntry[] entries)
    {
        var path = Path.Combine(_root, name);
        using var file = System.IO.File.Create(path);
        using var writer = new TarWriter(file, TarEntryFormat.Pax);
        foreach (var e in entries) writer.WriteEntry(e);
        return path;
    }

    private static PaxTarEntry File(string name, string content) =>
        new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)) };

    private ErofsImage Build(params string[] layers)
    {
        var boot = Path.Combine(_root, "boot");
        ImageBuilder.BuildFromLayers(layers, boot, Path.Combine(_root, "blobs"), new BuildOptions { Timestamp = 0 });
        return ErofsImage.Open(boot, new BlobDirectoryResolver(Path.Combine(_root, "blobs")));
    }

    private static string Read(ErofsImage image, string path)
    {
        var inode = image.ReadInodeAt(path);
        var buffer = new byte[inode.Size];
        image.ReadData(inode, 0, buffer);
        return System.Text.Encoding.UTF8.GetString(buffer);
    }

    [Fact]
    public void GnuLongNamesAndLinksAreRead()
    {
        var longDir = string.Join('/', Enumerable.Repeat("directory-with-a-long-name", 8));
        var path = Path.Combine(_root, "gnu.tar");
        using (var file = System.IO.File.Create(path))
        using (var writer = new TarWriter(file, TarEntryFormat.Gnu))
        {
            writer.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, longDir + "/file") { DataStream = new MemoryStream("gnu"u8.ToArray()) });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.SymbolicLink, "link") { LinkName = longDir + "/file" });
            writer.WriteEntry(new GnuTarEntry(TarEntryType.HardLink, "hard") { LinkName = longDir + "/file" });
        }
        using var image = Build(path);
        Assert.Equal("gnu", Read(image, longDir + "/file"));
        Assert.Equal(longDir + "/file", System.Text.Encoding.UTF8.GetString(image.ReadSymlink(image.ReadInodeAt("link"))));
        Assert.Equal(image.ReadInodeAt(longDir + "/file").Nid, image.ReadInodeAt("hard").Nid);
        Assert.Equal(2u, image.ReadInodeAt("hard").Disk.Nlink);
    }

    [Fact]
    public void DotDotIsRefused()
    {
        var tar = Tar("dotdot.tar", File("ok", "x"), File("a/../../evil", "x"));
        var e = Assert.Throws<InvalidDataException>(() => Build(tar));
        Assert.Contains("dotdot.tar", e.Message);
        Assert.Contains("..", e.Message);
    }

    [Fact]
    public void AbsolutePathsStayInsideTheImage()
    {
        using var image = Build(Tar("abs.tar", File("/etc/passwd", "inside")));
        Assert.Equal("inside", Read(image, "etc/passwd"));
    }

    [Fact]
    public void EntriesThroughASymlinkAreRefused()
    {
        var tar = Tar("symlink.tar", new PaxTarEntry(TarEntryType.SymbolicLink, "link") { LinkName = "/etc" }, File("link/passwd", "x"));
        var e = Assert.Throws<InvalidDataException>(() => Build(tar));
        Assert.Contains("symlink", e.Message);
        Assert.Contains("link/passwd", e.Message);
    }

    [Fact]
    public void ASymlinkInALowerLayerCannotRedirectAnUpperOne()
    {
        var lower = Tar("lower.tar", new PaxTarEntry(TarEntryType.SymbolicLink, "usr") { LinkName = "/" });
        var upper = Tar("upper.tar", File("usr/bin/tool", "x"));
        Assert.Throws<InvalidDataException>(() => Build(lower, upper));
    }

    [Fact]
    public void DuplicateEntriesKeepTheLastOne()
    {
        using var image = Build(Tar("dup.tar", File("f", "first"), File("f", "second")));
        Assert.Equal("second", Read(image, "f"));
    }

    [Fact]
    public void TruncatedArchivesAreReportedAsSuch()
    {
        var data = new byte[100_000];
        new Random(1).NextBytes(data);
        var tar = Tar("full.tar", new PaxTarEntry(TarEntryType.RegularFile, "big") { DataStream = new MemoryStream(data) }, File("after", "x"));
        var bytes = System.IO.File.ReadAllBytes(tar);
        foreach (int cut in new[] { 100, 700, 3000, 50_000 })
        {
            var truncated = Path.Combine(_root, $"cut-{cut}.tar");
            System.IO.File.WriteAllBytes(truncated, bytes[..cut]);
            var e = Assert.Throws<InvalidDataException>(() => Build(truncated));
            Assert.Contains($"cut-{cut}.tar", e.Message);
            Assert.Matches("truncated|damaged", e.Message);
        }
    }

    [Fact]
    public void HardLinkToNothingIsRefused()
    {
        var tar = Tar("link.tar", new PaxTarEntry(TarEntryType.HardLink, "h") { LinkName = "missing" });
        Assert.Contains("no earlier entry", Assert.Throws<InvalidDataException>(() => Build(tar)).Message);
    }

    [Fact]
    public void HugeMetadataHeadersAreRefusedBeforeAnyAllocation()
    {
        // A ustar header of type 'x' (PAX) that claims 8 GB of attributes, followed by almost nothing.
        var header = new byte[512];
        System.Text.Encoding.ASCII.GetBytes("PaxHeaders/evil").CopyTo(header, 0);
        System.Text.Encoding.ASCII.GetBytes("0000644\0").CopyTo(header, 100);
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(8_000_000_000L, 8).PadLeft(11, '0') + "\0").CopyTo(header, 124);
        header[156] = (byte)'x';
        System.Text.Encoding.ASCII.GetBytes("ustar\000").CopyTo(header, 257);
        Array.Fill(header, (byte)' ', 148, 8);
        int sum = header.Sum(b => b);
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(header, 148);
        var path = Path.Combine(_root, "huge.tar");
        System.IO.File.WriteAllBytes(path, [.. header, .. new byte[1024]]);
        long before = GC.GetTotalAllocatedBytes();
        var e = Assert.Throws<InvalidDataException>(() => Build(path));
        Assert.Contains("huge.tar", e.Message);
        Assert.Contains("limit", e.Message);
        Assert.True(GC.GetTotalAllocatedBytes() - before < 256 << 20, "the claimed size must not be allocated");
    }

    [Fact]
    public void GarbageIsNotATar()
    {
        var path = Path.Combine(_root, "garbage.tar");
        var junk = new byte[10_000];
        new Random(2).NextBytes(junk);
        System.IO.File.WriteAllBytes(path, junk);
        var e = Assert.Throws<InvalidDataException>(() => Build(path));
        Assert.Contains("garbage.tar", e.Message);
    }
}
