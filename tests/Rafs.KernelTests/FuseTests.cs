using Rafs.Daemon;
using Rafs.Interop;
using Rafs.Storage;

namespace Rafs.KernelTests;

/// <summary>
/// The FUSE frontend on this kernel: the image served by Rafs's own reader over /dev/fuse from on-demand blobs,
/// compared with the source tree and with the kernel's own EROFS mount of the same bootstrap.
/// </summary>
[Trait("Category", "Fuse")]
public sealed class FuseTests
{
    private static (string Source, string Boot, string Blobs) Build(Scratch scratch, bool rich)
    {
        var src = scratch.Dir("src");
        if (rich) RichTree.Create(src, new RichTreeOptions { HugeSparseFiles = false });
        RichTree.BigRandomFiles(src, count: 6, step: 777, seed: 21);
        File.WriteAllText(Path.Combine(src, "hello.txt"), "hello over fuse\n");
        var (boot, blobs) = RafsCli.BuildBootstrap(scratch, src);
        return (src, boot, blobs);
    }

    private static OnDemandMount MountFuse(string boot, string mnt, IBlobBackend backend, string cache) =>
        OnDemandMount.MountOwned(boot, mnt, backend, cache, new FuseFrontend(threads: 4));

    [Fact]
    public void FuseServesTheWholeTreeLazilyAndStatfsMatchesTheKernelsMount()
    {
        using var scratch = new Scratch();
        var (src, boot, blobs) = Build(scratch, rich: true);
        var mnt = scratch.Dir("mnt");
        var cache = scratch.PathOf("cache");
        var backend = new LocalDirectoryBackend(blobs);
        using (var mount = MountFuse(boot, mnt, backend, cache))
        {
            Assert.Contains(Mounts.MountPoints(), m => m == mnt);
            long afterMount = backend.BytesRead;
            Assert.Equal("hello over fuse\n", File.ReadAllText(Path.Combine(mnt, "hello.txt")));
            var blob = Assert.Single(mount.Blobs);
            Assert.True(backend.BytesRead - afterMount < 64 * 1024, $"reading one small file fetched {backend.BytesRead - afterMount} bytes");
            Assert.True(blob.FilledChunks * 10 < blob.ChunkCount, $"{blob.FilledChunks} of {blob.ChunkCount} chunks filled after one small file");

            TreeComparer.AssertSame(src, mnt, new CompareOptions { IgnoreRootMtime = true });
            Assert.True(blob.IsComplete);
            Assert.Equal(0, mount.Frontend.Counters.Errors);

            // The kernel caches what an immutable image lets it: a second walk sends no LOOKUP or GETATTR (entries and
            // attributes are cached), and re-reading every file sends no READ (pages kept across opens).
            var fuse = (FuseFrontend)mount.Frontend;
            long Asked(params uint[] opcodes) => opcodes.Sum(fuse.RequestsOf);
            long metadata = Asked(FuseAbi.LOOKUP, FuseAbi.GETATTR);
            foreach (var entry in Directory.EnumerateFileSystemEntries(mnt, "*", SearchOption.AllDirectories)) PosixFs.LStat(entry);
            Assert.Equal(metadata, Asked(FuseAbi.LOOKUP, FuseAbi.GETATTR));
            var files = Directory.GetFiles(mnt, "*", SearchOption.AllDirectories).Where(f => PosixFs.LStat(f).IsRegular).ToList();
            long reads = Asked(FuseAbi.READ);
            foreach (var file in files) File.ReadAllBytes(file);
            Assert.Equal(reads, Asked(FuseAbi.READ));
            Assert.True(Asked(FuseAbi.OPEN) >= files.Count);   // the counters do count: every open reached the daemon

            // The cache file FUSE filled is the device the bootstrap names, as erofs-utils checks it.
            var fsck = Tools.Run("fsck.erofs", "--device=" + blob.CachePath, boot);
            Assert.True(fsck.Exit == 0, $"fsck.erofs on the FUSE-filled cache file:\n{fsck.All}");

            // statfs as the kernel's own EROFS reports it for the same bootstrap and (now complete) device.
            using var kernel = new ErofsMount(boot, scratch.PathOf("kernel"), blob.CachePath);
            string Statfs(string path) => Tools.Ok("stat", "-f", "-c", "%b %f %a %c %d %S %l", path).Stdout.Trim();
            Assert.Equal(Statfs(kernel.Path), Statfs(mnt));
        }
        Assert.False(Mounts.IsMountPoint(mnt));
    }

    [Fact]
    public void ACorruptChunkGivesEioOverFuseNeverWrongBytes()
    {
        using var scratch = new Scratch();
        var (src, boot, blobs) = Build(scratch, rich: false);
        var blobPath = Assert.Single(Directory.GetFiles(blobs));
        BlobTable table;
        using (var f = File.OpenHandle(blobPath)) table = BlobTable.Read(f, blobPath);
        var bytes = File.ReadAllBytes(blobPath);
        bytes[table.Chunks.OrderBy(c => c.StoredOffset).First().StoredOffset + 10] ^= 0xFF;   // big-00's first chunk
        File.WriteAllBytes(blobPath, bytes);

        var mnt = scratch.Dir("mnt");
        using var mount = MountFuse(boot, mnt, new LocalDirectoryBackend(blobs), scratch.PathOf("cache"));
        var failed = new List<string>();
        foreach (var file in Directory.GetFiles(mnt).Order())
        {
            try
            {
                Assert.Equal(File.ReadAllBytes(Path.Combine(src, Path.GetFileName(file))), File.ReadAllBytes(file));
            }
            catch (IOException e)
            {
                Assert.Contains("Input/output error", e.Message);
                failed.Add(Path.GetFileName(file));
            }
        }
        Assert.Equal(["big-00"], failed);
        Assert.True(mount.Frontend.Counters.Errors > 0);
    }

    [Fact]
    public async Task KillingTheDaemonNeverLeavesAHungMountAndARestartServesItAgain()
    {
        using var scratch = new Scratch();
        var (src, boot, blobs) = Build(scratch, rich: false);
        var layout = scratch.PathOf("layout");
        RafsCli.Ok("push", boot, layout, "--blob-dir", blobs);
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount(layout, mnt, "--frontend", "fuse");
        Assert.Equal("fuse", daemon.Status(mnt).Frontend);
        Assert.Equal(File.ReadAllText(Path.Combine(src, "hello.txt")), File.ReadAllText(Path.Combine(mnt, "hello.txt")));

        // kill -9 the worker while a reader holds a file open: its next read fails (the FUSE session died with the
        // process) instead of hanging, and the restarted worker mounts the image afresh at the same place.
        using var held = File.OpenRead(Path.Combine(mnt, "big-01"));
        var worker = daemon.Client.Status().Pid;
        Tools.Ok("kill", "-9", worker.ToString());
        var buffer = new byte[4096];
        var read = Task.Run(() => held.Read(buffer, 0, buffer.Length));
        var first = await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(30)));
        Assert.True(first == read, "a read on the dead FUSE session hung");
        Assert.True(read.IsFaulted, "a read through the dead session returned data");

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && (!daemon.Client.IsRunning() || daemon.Client.Status().Pid == worker)) Thread.Sleep(200);
        Assert.NotEqual(worker, daemon.Client.Status().Pid);
        TreeComparer.AssertSame(src, mnt, new CompareOptions { IgnoreRootMtime = true });

        // Unmounting through the daemon leaves nothing behind, not even the detached dead session.
        RafsCli.Ok(["umount", mnt, .. daemon.Flags]);
        Assert.DoesNotContain(Mounts.MountPoints(), m => m == mnt);
    }
}
