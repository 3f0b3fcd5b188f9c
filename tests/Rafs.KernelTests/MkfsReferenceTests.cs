namespace Rafs.KernelTests;

/// <summary>
/// Our reader must read images made by Debian's mkfs.erofs (erofs-utils 1.5) exactly as the kernel does:
/// unpack with `rafs unpack` and compare with the kernel's view of the same image.
/// </summary>
[Trait("Category", "Reader")]
public sealed class MkfsReferenceTests
{
    // mkfs.erofs 1.5 fails on 255-byte names and writes holes out in full, so the tree leaves those out.
    private static readonly RichTreeOptions MkfsFriendly = new() { HugeSparseFiles = false, MaxLengthNames = false };

    [Fact]
    public void ReaderMatchesTheKernelOnAPlainMkfsImage()
    {
        using var scratch = new Scratch();
        var src = scratch.PathOf("src");
        RichTree.Create(src, MkfsFriendly);
        var image = scratch.PathOf("mkfs.img");
        Tools.Ok("mkfs.erofs", "--quiet", image, src);
        AssertReaderMatchesKernel(scratch, image, []);
    }

    [Fact]
    public void ReaderMatchesTheKernelOnAChunkedMkfsImageWithABlobDevice()
    {
        using var scratch = new Scratch();
        var src = scratch.PathOf("src");
        RichTree.Create(src, MkfsFriendly);
        var image = scratch.PathOf("mkfs.boot");
        var blob = scratch.PathOf("mkfs.blob");
        Tools.Ok("mkfs.erofs", "--quiet", "--chunksize=65536", "--blobdev=" + blob, image, src);
        AssertReaderMatchesKernel(scratch, image, [blob]);
    }

    private static void AssertReaderMatchesKernel(Scratch scratch, string image, string[] devices)
    {
        var unpacked = scratch.PathOf("unpacked");
        var args = new List<string> { "unpack", image, unpacked };
        foreach (var d in devices) args.AddRange(["--device", d]);
        RafsCli.Ok([.. args]);
        var check = new List<string> { "check", image };
        foreach (var d in devices) check.AddRange(["--device", d]);
        RafsCli.Ok([.. check]);
        using var mount = new ErofsMount(image, scratch.PathOf("mnt"), devices);
        TreeComparer.AssertSame(mount.Path, unpacked);
    }
}
