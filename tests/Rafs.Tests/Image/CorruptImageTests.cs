using System.Diagnostics;
using Rafs.Build;
using Rafs.Format;
using Rafs.Image;
using Rafs.Interop;

namespace Rafs.Tests.Image;

/// <summary>An image held in memory, so thousands of mutations cost no disk I/O.</summary>
internal sealed class MemoryBlockSource(string name, byte[] data) : IBlockSource
{
    public string Name => name;
    public long Length => data.Length;

    public void ReadExactly(long offset, Span<byte> buffer)
    {
        if (offset < 0 || offset > data.Length - buffer.Length)
            throw new ImageCorruptException($"{name}: read of {buffer.Length} bytes at {offset} is past the end ({data.Length} bytes)");
        data.AsSpan((int)offset, buffer.Length).CopyTo(buffer);
    }

    public void Dispose() { }
}

internal sealed class MemoryDeviceResolver(byte[][] devices) : IDeviceResolver
{
    public IBlockSource Open(int index, DeviceSlot slot) =>
        index < devices.Length ? new MemoryBlockSource($"device {index + 1}", devices[index]) : throw new ImageCorruptException($"no device {index + 1}");
}

/// <summary>A small tree with every structure the reader parses, built once into both layouts and by mkfs.erofs.</summary>
public sealed class SampleImages : IDisposable
{
    public string Root { get; } = Path.Combine("/var/tmp", $"rafs-unit-{Guid.NewGuid():N}"[..22]);
    public byte[] Plain { get; }
    public byte[] Bootstrap { get; }
    public byte[] Blob { get; }
    public byte[]? Mkfs { get; }

    public SampleImages()
    {
        var src = Path.Combine(Root, "src");
        Directory.CreateDirectory(Path.Combine(src, "many"));
        Directory.CreateDirectory(Path.Combine(src, "sub/deeper"));
        for (int i = 0; i < 400; i++) File.WriteAllText(Path.Combine(src, "many", $"entry-{i:D4}-with-some-length"), new string('a', i));
        var random = new Random(3);
        var data = new byte[300_000];
        random.NextBytes(data);
        File.WriteAllBytes(Path.Combine(src, "data.bin"), data);
        File.WriteAllBytes(Path.Combine(src, "sub/copy.bin"), data);
        File.WriteAllText(Path.Combine(src, "sub/deeper/tail.txt"), "tail data that gets inlined\n");
        PosixFs.Symlink("../data.bin"u8, Path.Combine(src, "sub/link"));
        PosixFs.Link(Path.Combine(src, "data.bin"), Path.Combine(src, "hardlink.bin"));
        using (var sparse = File.OpenHandle(Path.Combine(src, "sparse"), FileMode.Create, FileAccess.Write))
        {
            RandomAccess.SetLength(sparse, 8 << 20);
            RandomAccess.Write(sparse, data.AsSpan(0, 5000), 4 << 20);
        }
        foreach (var f in new[] { "data.bin", "sub/deeper/tail.txt", "many/entry-0001-with-some-length" })
        {
            PosixFs.SetXattr(Path.Combine(src, f), "user.shared", "same everywhere"u8);
            PosixFs.SetXattr(Path.Combine(src, f), "user.own-" + f.Length, "value"u8);
        }
        var tree = DirectoryScanner.Scan(src);
        var options = new BuildOptions { Uuid = Guid.Empty, Timestamp = 1700000000, ChunkSizeBits = 16 };
        ImageBuilder.BuildImage(tree, Path.Combine(Root, "plain.img"), options);
        var result = ImageBuilder.BuildBootstrap(DirectoryScanner.Scan(src), Path.Combine(Root, "boot"), Path.Combine(Root, "blobs"), options);
        Plain = File.ReadAllBytes(Path.Combine(Root, "plain.img"));
        Bootstrap = File.ReadAllBytes(Path.Combine(Root, "boot"));
        // The kernel and the reader see a blob's device layout, not its stored (compressed) form.
        var device = Path.Combine(Root, "blob.device");
        Rafs.Storage.BlobMaterializer.Materialize(result.BlobPath!, device);
        Blob = File.ReadAllBytes(device);
        var mkfs = Path.Combine(Root, "mkfs.img");
        try
        {
            using var p = Process.Start("mkfs.erofs", ["--quiet", mkfs, src]);
            p.WaitForExit();
            if (p.ExitCode == 0) Mkfs = File.ReadAllBytes(mkfs);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Console.WriteLine("SKIP: mkfs.erofs is not installed (apt-get install erofs-utils); mkfs image corruption not tested");
        }
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

/// <summary>
/// Hostile and damaged images: whatever bytes are flipped or cut, reading gives an image exception (or a
/// checker error) naming the problem, never another exception, a hang, or an unbounded allocation.
/// </summary>
public sealed class CorruptImageTests(SampleImages images) : IClassFixture<SampleImages>
{
    [Fact]
    public void IntactImagesReadCleanly()
    {
        foreach (var (name, bytes, devices) in Cases())
        {
            using var image = ErofsImage.Open(new MemoryBlockSource(name, bytes), new MemoryDeviceResolver(devices));
            var report = ImageChecker.Check(image);
            Assert.True(report.Ok, $"{name}: {string.Join("; ", report.Errors)}");
            Assert.True(report.Files >= 400);
        }
    }

    [Fact]
    public void FlippedBytesNeverEscapeAsOtherExceptions()
    {
        foreach (var (name, original, devices) in Cases())
        {
            int metadataStart = MetadataStart(original);
            var positions = new List<int>();
            for (int i = 1024; i < 1024 + 128; i++) positions.Add(i);                    // every superblock byte
            int step = Math.Max(1, (original.Length - metadataStart) / 700);
            for (int i = metadataStart; i < original.Length; i += step) positions.Add(i); // spread over the metadata area
            var random = new Random(11);
            for (int i = 0; i < 200; i++) positions.Add(random.Next(original.Length));
            int detected = 0;
            foreach (int pos in positions)
            {
                var mutated = (byte[])original.Clone();
                mutated[pos] ^= (byte)(1 << (pos % 8) | 0x80);
                if (ReadEverything($"{name} flip@{pos}", mutated, devices)) detected++;
            }
            Assert.True(detected > positions.Count / 10, $"{name}: only {detected} of {positions.Count} flips were noticed");
        }
    }

    [Fact]
    public void TruncatedImagesFailCleanly()
    {
        foreach (var (name, original, devices) in Cases())
        {
            for (int length = 0; length < original.Length; length += Math.Max(1, original.Length / 97))
                Assert.True(ReadEverything($"{name} cut@{length}", original[..length], devices), $"{name} cut to {length} bytes went unnoticed");
        }
    }

    [Fact]
    public void TruncatedOrDamagedBlobIsReported()
    {
        var cut = images.Blob[..(images.Blob.Length / 2)];
        Assert.True(ReadEverything("blob cut", images.Bootstrap, [cut]));
    }

    private IEnumerable<(string Name, byte[] Bytes, byte[][] Devices)> Cases()
    {
        yield return ("plain", images.Plain, []);
        yield return ("bootstrap", images.Bootstrap, [images.Blob]);
        if (images.Mkfs is not null) yield return ("mkfs", images.Mkfs, []);
    }

    /// <summary>Where metadata starts: everything from meta_blkaddr on (inodes, dirents, chunk indexes).</summary>
    private static int MetadataStart(byte[] image)
    {
        var sb = SuperBlock.Read(image.AsSpan(ErofsFormat.SuperOffset));
        return (int)Math.Min(image.Length - 1, (long)sb.MetaBlockAddress * ErofsFormat.BlockSize);
    }

    /// <summary>Opens, checks, walks and reads all data; true when a problem was reported. Fails on any other exception or a hang.</summary>
    private static bool ReadEverything(string name, byte[] bytes, byte[][] devices)
    {
        var task = Task.Run(() =>
        {
            try
            {
                using var image = ErofsImage.Open(new MemoryBlockSource(name, bytes), new MemoryDeviceResolver(devices));
                var report = ImageChecker.Check(image);
                var buffer = new byte[1 << 16];
                foreach (var entry in ImageWalker.Walk(image))
                {
                    image.ReadXattrs(entry.Inode);
                    if (entry.Inode.IsSymlink) image.ReadSymlink(entry.Inode);
                    if (entry.Inode.IsRegular)
                        for (long at = 0; at < entry.Inode.Size; at += buffer.Length) image.ReadData(entry.Inode, at, buffer);
                }
                return !report.Ok;
            }
            catch (ImageException)
            {
                return true;
            }
        });
        Assert.True(task.Wait(TimeSpan.FromSeconds(20)), $"{name}: reading hung");
        return task.Result;
    }
}
