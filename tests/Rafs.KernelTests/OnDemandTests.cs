using Rafs.Daemon;
using Rafs.Interop;
using Rafs.Storage;

namespace Rafs.KernelTests;

/// <summary>
/// The fanotify frontend on this kernel: blobs start as empty sparse cache files; the kernel's reads raise
/// FAN_PRE_ACCESS events and only the chunks read are fetched, verified and written.
/// </summary>
[Trait("Category", "OnDemand")]
public sealed class OnDemandTests
{
    private static (string Source, string Boot, string Blobs) Build(Scratch scratch)
    {
        var src = scratch.Dir("src");
        RichTree.BigRandomFiles(src, count: 12, step: 777, seed: 21);
        File.WriteAllText(Path.Combine(src, "hello.txt"), "hello, lazily\n");
        var (boot, blobs) = RafsCli.BuildBootstrap(scratch, src);
        return (src, boot, blobs);
    }

    [Fact]
    public void ReadsFetchOnlyWhatIsReadAndARestartFetchesNothingAgain()
    {
        using var scratch = new Scratch();
        var (src, boot, blobs) = Build(scratch);
        var blobPath = Assert.Single(Directory.GetFiles(blobs));
        BlobTable table;
        using (var f = File.OpenHandle(blobPath)) table = BlobTable.Read(f, blobPath);
        long tableAndFooter = table.Footer.TableSize + BlobFooter.FooterSize;
        var cache = scratch.PathOf("cache");
        var mnt = scratch.Dir("mnt");

        var backend = new LocalDirectoryBackend(blobs);
        using (var mount = OnDemandMount.Mount(boot, mnt, backend, cache))
        {
            Assert.Equal(tableAndFooter, backend.BytesRead);          // mounting fetched the chunk table only
            Assert.Equal("hello, lazily\n", File.ReadAllText(Path.Combine(mnt, "hello.txt")));
            var helloChunk = table.Chunks.Single(c => c.Size == "hello, lazily\n".Length);
            Assert.Equal(tableAndFooter + helloChunk.StoredSize, backend.BytesRead);
            Assert.True(mount.Frontend.Counters.Requests > 0);

            TreeComparer.AssertSame(src, mnt, new CompareOptions { IgnoreRootMtime = false });
            Assert.True(mount.Blobs[0].IsComplete);
            Assert.Equal(tableAndFooter + table.StoredChunkBytes, backend.BytesRead);   // every chunk exactly once
            Assert.Equal(0, mount.Frontend.Counters.Errors);
        }
        Assert.False(Mounts.IsMountPoint(mnt));

        // A new daemon over the same cache resumes from the filled-chunk record: nothing is fetched again.
        Kernel.DropCaches();
        var again = new LocalDirectoryBackend(blobs);
        using (var mount = OnDemandMount.Mount(boot, mnt, again, cache))
        {
            TreeComparer.AssertSame(src, mnt);
            Assert.Equal(0, again.BytesRead);          // the verified table is cached locally too
            Assert.Equal(0, mount.Frontend.Counters.Requests);    // complete blobs carry no marks
        }
    }

    [Fact]
    public void ACorruptChunkGivesEioNeverWrongBytes()
    {
        using var scratch = new Scratch();
        var (src, boot, blobs) = Build(scratch);
        var blobPath = Assert.Single(Directory.GetFiles(blobs));
        BlobTable table;
        using (var f = File.OpenHandle(blobPath)) table = BlobTable.Read(f, blobPath);
        // Damage the first chunk of big-00 (the first file's data comes first in the blob).
        var bytes = File.ReadAllBytes(blobPath);
        var victim = table.Chunks.OrderBy(c => c.StoredOffset).First();
        bytes[victim.StoredOffset + 10] ^= 0xFF;
        File.WriteAllBytes(blobPath, bytes);

        var mnt = scratch.Dir("mnt");
        using var mount = OnDemandMount.Mount(boot, mnt, new LocalDirectoryBackend(blobs), scratch.PathOf("cache"));
        var damagedFiles = 0;
        foreach (var file in Directory.GetFiles(mnt).Order())
        {
            try
            {
                var content = File.ReadAllBytes(file);
                Assert.Equal(File.ReadAllBytes(Path.Combine(src, Path.GetFileName(file))), content);
            }
            catch (IOException)
            {
                damagedFiles++;
            }
        }
        Assert.Equal(1, damagedFiles);
        Assert.True(mount.Frontend.Counters.Errors > 0);
    }
}
