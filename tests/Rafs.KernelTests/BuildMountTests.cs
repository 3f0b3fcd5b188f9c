using System.Security.Cryptography;
using Rafs.Interop;

namespace Rafs.KernelTests;

/// <summary>The rich source tree, generated once for all build tests.</summary>
public sealed class RichTreeFixture : IDisposable
{
    public Scratch Scratch { get; } = new();
    public string Source { get; }

    public RichTreeFixture()
    {
        Source = Scratch.PathOf("src");
        RichTree.Create(Source);
    }

    public void Dispose() => Scratch.Dispose();
}

/// <summary>
/// Acceptance tests of the foundation: `rafs build` in both layouts, checked by the kernel (mount + compare with
/// the source), by fsck.erofs, and by `rafs unpack`.
/// </summary>
[Trait("Category", "Build")]
public sealed class BuildMountTests(RichTreeFixture tree) : IClassFixture<RichTreeFixture>
{
    private static readonly CompareOptions SourceCompare = new();

    [Fact]
    public void SelfContainedImageMountsExactlyPassesFsckAndUnpacks()
    {
        using var scratch = new Scratch();
        var image = scratch.PathOf("image.erofs");
        RafsCli.Ok("build", tree.Source, "-o", image);

        using (var mount = new ErofsMount(image, scratch.PathOf("mnt")))
            TreeComparer.AssertSame(tree.Source, mount.Path, SourceCompare);

        var fsck = Tools.Run("fsck.erofs", image);
        Assert.True(fsck.Exit == 0, fsck.All);

        var output = scratch.PathOf("unpacked");
        RafsCli.Ok("unpack", image, output);
        TreeComparer.AssertSame(tree.Source, output, SourceCompare);

        Assert.True(RafsCli.Run("check", image).Exit == 0);

        // Holes cost nothing: the image takes about what the source's data takes, not its 6 GiB of holes.
        long imageBytes = PosixFs.LStat(image).Blocks512 * 512;
        long sourceBytes = AllocatedBytes(tree.Source);
        Assert.True(imageBytes < sourceBytes * 1.2 + (4 << 20), $"image takes {imageBytes} bytes, source data {sourceBytes}");
        Assert.True(new FileInfo(image).Length < 64L << 20, $"image is {new FileInfo(image).Length} bytes long");
    }

    [Fact]
    public void BootstrapAndBlobMountThroughRafsPassFsckAndUnpack()
    {
        using var scratch = new Scratch();
        var boot = scratch.PathOf("image.boot");
        var blobs = scratch.PathOf("blobs");
        RafsCli.Ok("build", tree.Source, "--bootstrap", boot, "--blob-dir", blobs, "--chunk-size", "65536");

        var blob = Assert.Single(Directory.GetFiles(blobs));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(blob))), Path.GetFileName(blob));
        Assert.True(new FileInfo(boot).Length < 2 << 20, "the bootstrap holds metadata only");

        var mnt = scratch.Dir("mnt");
        var cache = scratch.PathOf("cache");
        RafsCli.Ok("mount", boot, mnt, "--blob-dir", blobs, "--cache-dir", cache);
        try
        {
            Assert.True(Mounts.IsMountPoint(mnt));
            TreeComparer.AssertSame(tree.Source, mnt, SourceCompare);
        }
        finally
        {
            RafsCli.Ok("umount", mnt);
        }
        Assert.False(Mounts.IsMountPoint(mnt));
        var device = Assert.Single(Directory.GetFiles(cache));
        Assert.Equal(Path.GetFileName(blob) + ".device", Path.GetFileName(device));
        Assert.True(new FileInfo(blob).Length < new FileInfo(device).Length, "the stored blob is compressed");

        var fsck = Tools.Run("fsck.erofs", "--device=" + device, boot);
        Assert.True(fsck.Exit == 0, fsck.All);

        var output = scratch.PathOf("unpacked");
        RafsCli.Ok("unpack", boot, output, "--blob-dir", blobs);
        TreeComparer.AssertSame(tree.Source, output, SourceCompare);
        RafsCli.Ok("check", boot, "--blob-dir", blobs);
    }

    [Fact]
    public void BuildsAreReproducibleWithUuidAndTimestamp()
    {
        using var scratch = new Scratch();
        string[] fixedIds = ["--uuid", "00000000-0000-0000-0000-000000000001", "--timestamp", "1700000000"];
        RafsCli.Ok(["build", tree.Source, "-o", scratch.PathOf("a.img"), .. fixedIds]);
        RafsCli.Ok(["build", tree.Source, "-o", scratch.PathOf("b.img"), .. fixedIds]);
        Assert.True(File.ReadAllBytes(scratch.PathOf("a.img")).AsSpan().SequenceEqual(File.ReadAllBytes(scratch.PathOf("b.img"))), "self-contained images differ");

        RafsCli.Ok(["build", tree.Source, "--bootstrap", scratch.PathOf("a.boot"), "--blob-dir", scratch.PathOf("blobs-a"), .. fixedIds]);
        RafsCli.Ok(["build", tree.Source, "--bootstrap", scratch.PathOf("b.boot"), "--blob-dir", scratch.PathOf("blobs-b"), .. fixedIds]);
        Assert.True(File.ReadAllBytes(scratch.PathOf("a.boot")).AsSpan().SequenceEqual(File.ReadAllBytes(scratch.PathOf("b.boot"))), "bootstraps differ");
        Assert.Equal(Directory.GetFiles(scratch.PathOf("blobs-a")).Select(Path.GetFileName), Directory.GetFiles(scratch.PathOf("blobs-b")).Select(Path.GetFileName));
    }

    [Fact]
    public void DuplicateChunksAreStoredOnce()
    {
        using var scratch = new Scratch();
        var random = new Random(7);
        byte[] Bytes(int n) { var b = new byte[n]; random.NextBytes(b); return b; }
        var unique = scratch.Dir("unique");
        var dups = scratch.Dir("dups");
        var shared = Bytes(4 << 20);
        var prefix = Bytes(2 << 20);
        var tailA = Bytes(300_000);
        var tailB = Bytes(500_000);
        var other = Bytes(8 << 20);
        foreach (var dir in new[] { unique, dups })
        {
            File.WriteAllBytes(Path.Combine(dir, "other"), other);
            File.WriteAllBytes(Path.Combine(dir, "shared-1"), shared);
            File.WriteAllBytes(Path.Combine(dir, "prefix-a"), [.. prefix, .. tailA]);
        }
        File.WriteAllBytes(Path.Combine(dups, "shared-2"), shared);
        File.WriteAllBytes(Path.Combine(dups, "shared-3"), shared);
        File.WriteAllBytes(Path.Combine(dups, "prefix-b"), [.. prefix, .. tailB]);

        RafsCli.Ok("build", unique, "--bootstrap", scratch.PathOf("u.boot"), "--blob-dir", scratch.PathOf("bu"), "--chunk-size", "1M");
        RafsCli.Ok("build", dups, "--bootstrap", scratch.PathOf("d.boot"), "--blob-dir", scratch.PathOf("bd"), "--chunk-size", "1M");
        var uniqueTable = ReadTable(Assert.Single(Directory.GetFiles(scratch.PathOf("bu"))));
        var dupTable = ReadTable(Assert.Single(Directory.GetFiles(scratch.PathOf("bd"))));
        // The duplicate tree adds only prefix-b's own tail (its first 2 MiB are the same chunks as prefix-a's).
        Assert.Equal(uniqueTable.Chunks.Count + 1, dupTable.Chunks.Count);
        Assert.Equal(uniqueTable.Footer.DeviceSize + (tailB.Length + 4095) / 4096 * 4096, dupTable.Footer.DeviceSize);
        Assert.Equal(uniqueTable.UncompressedBytes + tailB.Length, dupTable.UncompressedBytes);
        long dataBytes = other.Length + shared.Length + prefix.Length + tailA.Length;
        Assert.Equal(dataBytes, uniqueTable.UncompressedBytes);

        var mnt = scratch.Dir("mnt");
        RafsCli.Ok("mount", scratch.PathOf("d.boot"), mnt, "--blob-dir", scratch.PathOf("bd"), "--cache-dir", scratch.PathOf("cache"));
        TreeComparer.AssertSame(dups, mnt, SourceCompare);
        RafsCli.Ok("umount", mnt);
    }

    private static Rafs.Storage.BlobTable ReadTable(string blob)
    {
        using var file = File.OpenHandle(blob);
        return Rafs.Storage.BlobTable.Read(file, blob);
    }

    [Fact]
    public void ChunkDictionaryStoresOnlyTheDifferenceOfASecondImage()
    {
        using var scratch = new Scratch();
        var random = new Random(9);
        var v1 = scratch.Dir("v1");
        for (int i = 0; i < 10; i++)
        {
            var data = new byte[(2 << 20) + 1000 * i];
            random.NextBytes(data);
            File.WriteAllBytes(Path.Combine(v1, $"f{i}"), data);
        }
        var v2 = scratch.PathOf("v2");
        Tools.Ok("cp", "-a", v1, v2);
        using (var f = File.OpenWrite(Path.Combine(v2, "f3"))) { f.Position = 100; f.WriteByte(0xAB); }        // one chunk changes
        using (var f = File.OpenWrite(Path.Combine(v2, "f7"))) { f.Position = (1 << 20) + 5; f.WriteByte(0xCD); }
        var added = new byte[300_000];
        random.NextBytes(added);
        File.WriteAllBytes(Path.Combine(v2, "new"), added);

        var blobs = scratch.PathOf("blobs");
        RafsCli.Ok("build", v1, "--bootstrap", scratch.PathOf("v1.boot"), "--blob-dir", blobs, "--chunk-size", "1M");
        var first = Assert.Single(Directory.GetFiles(blobs));
        RafsCli.Ok("build", v2, "--bootstrap", scratch.PathOf("v2.boot"), "--blob-dir", blobs, "--chunk-size", "1M", "--chunk-dict", scratch.PathOf("v1.boot"));
        var second = Assert.Single(Directory.GetFiles(blobs), f => f != first);
        var table = ReadTable(second);
        // New data: the two changed 1 MiB chunks and the new file — nothing else.
        Assert.Equal(3, table.Chunks.Count);
        Assert.Equal(2 * (1 << 20) + added.Length, table.UncompressedBytes);

        using var json = System.Text.Json.JsonDocument.Parse(RafsCli.Ok("inspect", scratch.PathOf("v2.boot"), "--json").Stdout);
        Assert.Equal(2, json.RootElement.GetProperty("devices").GetArrayLength());
        var mnt = scratch.Dir("mnt");
        RafsCli.Ok("mount", scratch.PathOf("v2.boot"), mnt, "--blob-dir", blobs, "--cache-dir", scratch.PathOf("cache"));
        try { TreeComparer.AssertSame(v2, mnt); }
        finally { RafsCli.Ok("umount", mnt); }
    }

    [Fact]
    public void MountRefusesACorruptOrMissingBlob()
    {
        using var scratch = new Scratch();
        var src = scratch.Dir("src");
        File.WriteAllBytes(Path.Combine(src, "data"), RandomNumberGenerator.GetBytes(300_000));
        var boot = scratch.PathOf("boot");
        var blobs = scratch.PathOf("blobs");
        RafsCli.Ok("build", src, "--bootstrap", boot, "--blob-dir", blobs);
        var blob = Assert.Single(Directory.GetFiles(blobs));
        var digest = Path.GetFileName(blob);
        var mnt = scratch.Dir("mnt");

        var bytes = File.ReadAllBytes(blob);
        bytes[1000] ^= 0xFF;
        File.WriteAllBytes(blob, bytes);
        var corrupt = RafsCli.Run("mount", boot, mnt, "--blob-dir", blobs, "--cache-dir", scratch.PathOf("cache"));
        Assert.NotEqual(0, corrupt.Exit);
        Assert.Contains("corrupt", corrupt.Stderr);
        Assert.Contains(digest, corrupt.Stderr);
        Assert.False(Mounts.IsMountPoint(mnt));
        var check = RafsCli.Run("check", boot, "--blob-dir", blobs);
        Assert.NotEqual(0, check.Exit);
        Assert.Contains(digest, check.Stderr);

        File.Delete(blob);
        var missing = RafsCli.Run("mount", boot, mnt, "--blob-dir", blobs, "--cache-dir", scratch.PathOf("cache"));
        Assert.NotEqual(0, missing.Exit);
        Assert.Contains("missing", missing.Stderr);
        Assert.Contains(digest, missing.Stderr);
        Assert.False(Mounts.IsMountPoint(mnt));
    }

    [Fact]
    public void ReaderVerbsShowTheImage()
    {
        using var scratch = new Scratch();
        var boot = scratch.PathOf("boot");
        var blobs = scratch.PathOf("blobs");
        RafsCli.Ok("build", tree.Source, "--bootstrap", boot, "--blob-dir", blobs);
        var digest = Path.GetFileName(Assert.Single(Directory.GetFiles(blobs)));

        using var json = System.Text.Json.JsonDocument.Parse(RafsCli.Ok("inspect", boot, "--json").Stdout);
        Assert.Equal(digest, json.RootElement.GetProperty("devices")[0].GetProperty("tag").GetString());
        Assert.Contains("chunked_file", json.RootElement.GetProperty("features").GetString());
        Assert.Contains("device_table", json.RootElement.GetProperty("features").GetString());
        Assert.Contains("sha256:" + digest, RafsCli.Ok("inspect", boot).Stdout);

        var listing = RafsCli.Ok("ls", boot, "/dev").Stdout;
        Assert.Contains("259, 300000", listing);
        Assert.Contains("big-minor", listing);
        Assert.Contains("-> ../sizes/file-1", RafsCli.Ok("ls", boot, "/links").Stdout);
        Assert.Contains("/deep/d0/d1", RafsCli.Ok("ls", boot, "/deep", "-R").Stdout);

        var cat = RafsCli.Ok("cat", boot, "/unicode/日本語のファイル", "--blob-dir", blobs).Stdout;
        Assert.Equal("cjk", cat);
        var missing = RafsCli.Run("cat", boot, "/no/such/file", "--blob-dir", blobs);
        Assert.NotEqual(0, missing.Exit);
        Assert.Contains("no such file", missing.Stderr);
        var noBlobs = RafsCli.Run("cat", boot, "/unicode/日本語のファイル");
        Assert.NotEqual(0, noBlobs.Exit);
        Assert.Contains("--blob-dir", noBlobs.Stderr);
    }

    [Fact]
    public void CorruptChunkIsRefusedByMaterializeAndReportedByCheck()
    {
        using var scratch = new Scratch();
        var src = scratch.Dir("src");
        var text = string.Concat(Enumerable.Range(0, 50_000).Select(i => $"line {i} compresses well\n"));
        File.WriteAllText(Path.Combine(src, "text"), text);
        var boot = scratch.PathOf("boot");
        var blobs = scratch.PathOf("blobs");
        RafsCli.Ok("build", src, "--bootstrap", boot, "--blob-dir", blobs, "--chunk-size", "64K");
        var blob = Assert.Single(Directory.GetFiles(blobs));
        var good = scratch.PathOf("good.device");
        RafsCli.Ok("blob", "materialize", blob, good);
        Assert.Equal(text, File.ReadAllText(good)[..text.Length]);

        // Damage one chunk inside the compressed data (not the table or footer), under a name that is not a digest,
        // so only the per-chunk sha256 can catch it.
        var damaged = scratch.PathOf("damaged-blob");
        var bytes = File.ReadAllBytes(blob);
        bytes[100] ^= 0x55;
        File.WriteAllBytes(damaged, bytes);
        var device = scratch.PathOf("damaged.device");
        var result = RafsCli.Run("blob", "materialize", damaged, device);
        Assert.NotEqual(0, result.Exit);
        Assert.Matches("sha256|corrupt", result.Stderr);
        Assert.False(File.Exists(device), "no device file may be written from a bad blob");
        Assert.Empty(Directory.GetFiles(scratch.Root, ".damaged.device.tmp*"));

        File.WriteAllBytes(blob, bytes);
        var check = RafsCli.Run("check", boot, "--blob-dir", blobs);
        Assert.NotEqual(0, check.Exit);
        Assert.Contains("fails its sha256 check", check.Stderr + check.Stdout);
    }

    private static long AllocatedBytes(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Sum(f => PosixFs.LStat(f).Blocks512 * 512);
}
