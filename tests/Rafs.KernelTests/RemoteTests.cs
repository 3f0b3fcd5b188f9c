using System.Diagnostics;
using System.Text;
using Rafs.Interop;
using Rafs.Storage;

namespace Rafs.KernelTests;

/// <summary>
/// On-demand images end to end: `rafs push` to Debian's docker-registry (or an OCI layout served over HTTP),
/// `rafs mount REF` through the daemon (started on demand), the kernel reading through fanotify.
/// </summary>
[Trait("Category", "Remote")]
public sealed class RemoteTests
{
    private const string Repo = "test/img";

    /// <summary>25 distinct ~1 MiB random files and a tiny one: big enough that laziness shows.</summary>
    private static string LargeTree(Scratch scratch)
    {
        var src = scratch.Dir("large");
        RichTree.BigRandomFiles(src, count: 25, step: 1000, seed: 5);
        File.WriteAllText(Path.Combine(src, "tiny.txt"), "tiny and lazy\n");
        return src;
    }

    /// <summary>The large tree, built and pushed to <paramref name="registry"/> as test/img:<paramref name="tag"/>.</summary>
    private static (string Src, string Boot, string Blobs, string Reference) PushLargeTree(Scratch scratch, RegistryServer registry, string tag)
    {
        var src = LargeTree(scratch);
        var (boot, blobs) = RafsCli.BuildBootstrap(scratch, src);
        var reference = $"{registry.Host}/{Repo}:{tag}";
        RafsCli.Ok("push", boot, reference, "--blob-dir", blobs);
        return (src, boot, blobs, reference);
    }

    private static BlobTable TableOf(string blobs) =>
        Directory.GetFiles(blobs).Select(p => { using var f = File.OpenHandle(p); return BlobTable.Read(f, p); }).Single();

    private static void AssertDaemonGone(DaemonSession daemon, string mnt)
    {
        Assert.False(Mounts.IsMountPoint(mnt), $"{mnt} is still mounted");
        for (int i = 0; i < 50 && daemon.DaemonPids().Count > 0; i++) Thread.Sleep(100);
        Assert.Empty(daemon.DaemonPids());
        Assert.False(File.Exists(daemon.Socket));
    }

    [Fact]
    public void PushedImageMountsColdFromTheRegistryAndMatchesTheSource()
    {
        using var scratch = new Scratch();
        using var registry = new RegistryServer(scratch);
        var src = scratch.PathOf("src");
        RichTree.Create(src, new RichTreeOptions { HugeSparseFiles = false });
        var (boot, blobs) = RafsCli.BuildBootstrap(scratch, src);
        var reference = $"{registry.Host}/{Repo}:v1";
        var push = RafsCli.Ok("push", boot, reference, "--blob-dir", blobs);
        Assert.Contains("0 already there", push.Stdout);
        // Pushing again uploads nothing: the registry has every blob.
        Assert.Contains("0 blob(s) uploaded", RafsCli.Ok("push", boot, reference, "--blob-dir", blobs).Stdout);

        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount(reference, mnt);
        var before = daemon.Status(mnt);
        Assert.Equal("fanotify", before.Frontend);   // auto: this kernel has pre-content hooks, the preferred path
        Assert.All(before.Blobs, b => Assert.Equal(0, b.FetchedBytes));   // cold: mounting fetched no chunk
        TreeComparer.AssertSame(src, mnt);
        var after = daemon.Status(mnt);
        Assert.All(after.Blobs, b => Assert.True(b.Complete && !b.Marked, $"blob {b.Digest} not complete/unmarked after a full read"));
        // The cache files the daemon assembled chunk by chunk, checked by erofs-utils as the image's devices.
        var devices = after.Blobs.Select(b => "--device=" + Path.Combine(daemon.StateDir, "cache", b.Digest["sha256:".Length..] + ".ondemand"));
        var fsck = Tools.Run("fsck.erofs", [.. devices, after.Bootstrap]);
        Assert.True(fsck.Exit == 0, fsck.All);
        Assert.Equal(0, daemon.Client.Status().EventsDenied);
        Assert.Contains("rafs_fanotify_events_total", daemon.Client.Metrics());
        var status = RafsCli.Ok(["status", .. daemon.Flags]).Stdout;
        Assert.Contains("complete", status);

        RafsCli.Ok(["umount", mnt, .. daemon.Flags]);
        Assert.False(Mounts.IsMountPoint(mnt));
        Assert.Empty(daemon.Client.List());
        daemon.Stop();
        AssertDaemonGone(daemon, mnt);
    }

    [Fact]
    public void ReadingOneSmallFileFetchesOnlyItsChunkPlusBootstrapAndTables()
    {
        using var scratch = new Scratch();
        using var registry = new RegistryServer(scratch);
        var (src, boot, blobs, reference) = PushLargeTree(scratch, registry, "lazy");
        var table = TableOf(blobs);
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount(reference, mnt);

        Assert.Equal("tiny and lazy\n", File.ReadAllText(Path.Combine(mnt, "tiny.txt")));
        var status = daemon.Status(mnt);
        long tinyChunk = table.Chunks.Single(c => c.Size == "tiny and lazy\n".Length).StoredSize;
        long bootstrap = new FileInfo(boot).Length;
        long tables = table.Footer.TableSize + BlobFooter.FooterSize;
        long manifest = ManifestSize(registry, "lazy");
        long allowed = manifest + bootstrap + tables + tinyChunk;
        Assert.True(status.BackendBytes <= allowed,
            $"fetched {status.BackendBytes} bytes; manifest {manifest} + bootstrap {bootstrap} + table {tables} + chunk {tinyChunk} = {allowed}");
        Assert.Equal(tinyChunk, status.Blobs.Single().FetchedBytes);
        Assert.True(status.BackendBytes * 50 < table.StoredChunkBytes, "reading one tiny file fetched more than 2% of the image");
    }

    private static long ManifestSize(RegistryServer registry, string tag)
    {
        using var http = new HttpClient();
        var request = new HttpRequestMessage(HttpMethod.Get, $"http://{registry.Host}/v2/{Repo}/manifests/{tag}");
        request.Headers.Accept.ParseAdd("application/vnd.oci.image.manifest.v1+json");
        using var response = http.Send(request);
        response.EnsureSuccessStatusCode();
        return response.Content.ReadAsByteArrayAsync().Result.Length;
    }

    [Fact]
    public void TokenAuthenticatedRegistryServesPushAndMount()
    {
        using var scratch = new Scratch();
        var bundle = scratch.PathOf("token-signer.pem");
        using var signer = new TokenSigner(bundle);
        using var issuer = TestHttpServer.TokenIssuer(signer, "alice", "s3cret");
        using var registry = new RegistryServer(scratch, tokenAuth: ($"{issuer.Url}/token", "rafs-registry", signer.Issuer, bundle));
        var src = scratch.PathOf("src");
        RichTree.Create(src, new RichTreeOptions { HugeSparseFiles = false, MaxLengthNames = false });
        var (boot, blobs) = RafsCli.BuildBootstrap(scratch, src);
        var reference = $"{registry.Host}/{Repo}:auth";

        var denied = RafsCli.Run("push", boot, reference, "--blob-dir", blobs, "--credentials", "alice:wrong");
        Assert.NotEqual(0, denied.Exit);
        Assert.Contains("401", denied.Stderr);
        RafsCli.Ok("push", boot, reference, "--blob-dir", blobs, "--credentials", "alice:s3cret");

        // Credentials for the mount come from a docker config.json, as `docker login` writes it.
        var dockerConfig = scratch.PathOf("docker-config.json");
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3cret"));
        File.WriteAllText(dockerConfig, "{\"auths\":{\"" + registry.Host + "\":{\"auth\":\"" + auth + "\"}}}");
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        var anonymous = RafsCli.Run(["mount", reference, mnt, .. daemon.Flags]);
        Assert.NotEqual(0, anonymous.Exit);
        daemon.Mount(reference, mnt, "--docker-config", dockerConfig);
        TreeComparer.AssertSame(src, mnt);
        Assert.True(issuer.Requests >= 2, "the token server was never asked");
    }

    [Fact]
    public void TlsWithACustomCaAndAMirrorInFrontOfADeadOrigin()
    {
        using var scratch = new Scratch();
        var (ca, cert, key) = TestCertificates.Create(scratch.Dir("tls"));
        using var registry = new RegistryServer(scratch, tls: (cert, key));
        var src = LargeTree(scratch);
        var (boot, blobs) = RafsCli.BuildBootstrap(scratch, src);
        var reference = $"{registry.Host}/{Repo}:tls";
        var untrusted = RafsCli.Run("push", boot, reference, "--blob-dir", blobs);
        Assert.NotEqual(0, untrusted.Exit);   // loopback without a CA means plain HTTP, which a TLS registry refuses
        RafsCli.Ok("push", boot, reference, "--blob-dir", blobs, "--ca-file", ca);

        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount(reference, mnt, "--ca-file", ca);
        Assert.Equal("tiny and lazy\n", File.ReadAllText(Path.Combine(mnt, "tiny.txt")));
        RafsCli.Ok(["umount", mnt, .. daemon.Flags]);

        // The origin named by the reference does not exist; the mirror (the TLS registry) serves everything.
        var deadOrigin = $"127.0.0.1:{Ports.Free()}/{Repo}:tls";
        daemon.Mount(deadOrigin, mnt, "--mirror", $"https://{registry.Host}", "--ca-file", ca);
        TreeComparer.AssertSame(src, mnt);
    }

    [Fact]
    public void PlainHttpRangeServingOfAnOciLayout()
    {
        using var scratch = new Scratch();
        var src = LargeTree(scratch);
        var (boot, blobs) = RafsCli.BuildBootstrap(scratch, src);
        var layout = scratch.PathOf("layout");
        RafsCli.Ok("push", boot, layout + ":v2", "--blob-dir", blobs);
        using var server = TestHttpServer.Files(layout);
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount($"{server.Url}#v2", mnt);
        Assert.Equal("tiny and lazy\n", File.ReadAllText(Path.Combine(mnt, "tiny.txt")));
        var table = TableOf(blobs);
        var status = daemon.Status(mnt);
        Assert.True(status.BackendBytes * 50 < table.StoredChunkBytes, $"fetched {status.BackendBytes} bytes for one tiny file");
        TreeComparer.AssertSame(src, mnt);
        Assert.Equal(table.StoredChunkBytes, daemon.Status(mnt).Blobs.Single().FetchedBytes);   // each chunk once
    }

    [Fact]
    public void KilledWorkerIsReplacedAndAFullRestartFetchesNothingAgain()
    {
        using var scratch = new Scratch();
        using var registry = new RegistryServer(scratch);
        var (src, boot, blobs, reference) = PushLargeTree(scratch, registry, "restart");
        var files = Directory.GetFiles(src).Select(Path.GetFileName).Order().ToList();
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount(reference, mnt);

        void ReadAndCheck(IEnumerable<string?> names)
        {
            foreach (var name in names)
                Assert.True(File.ReadAllBytes(Path.Combine(mnt, name!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(src, name!))), name);
        }
        var firstHalf = files.Take(files.Count / 2).ToList();
        ReadAndCheck(firstHalf);
        var worker = daemon.Client.Status();
        int filledBefore = daemon.Status(mnt).Blobs.Single().FilledChunks;
        Assert.True(filledBefore > 0);

        // kill -9 the worker: the supervisor keeps the fanotify group, so reads wait for the new worker, never see zeros.
        Tools.Ok("kill", "-9", worker.Pid.ToString());
        // Background read-ahead may have filled more before the kill: count what the record holds at restart.
        int filledAtRestart = daemon.Status(mnt).Blobs.Single().FilledChunks;
        Assert.True(filledAtRestart >= filledBefore, $"the record lost chunks: {filledAtRestart} < {filledBefore}");
        Kernel.DropCaches();
        ReadAndCheck(files);   // first half again (cache dropped: answered from the record) and the rest
        var replaced = daemon.Client.Status();
        Assert.NotEqual(worker.Pid, replaced.Pid);
        Assert.Equal(1, replaced.WorkerRestarts);
        var blob = daemon.Status(mnt).Blobs.Single();
        Assert.True(blob.Complete);
        Assert.Equal(blob.Chunks - filledAtRestart, blob.FetchedChunks);   // the new worker fetched only what was missing

        // A clean stop unmounts; a new daemon over the same state mounts again and fetches no chunk.
        daemon.Stop();
        AssertDaemonGone(daemon, mnt);
        Kernel.DropCaches();
        daemon.Mount(reference, mnt);
        ReadAndCheck(files);
        var again = daemon.Status(mnt);
        Assert.Equal(0, again.Blobs.Single().FetchedBytes);
        Assert.True(again.BackendBytes < 64 * 1024, $"remount fetched {again.BackendBytes} bytes (only the manifest was expected)");
    }

    [Fact]
    public void WorkerKilledDuringAReadGivesEioOrTheRightBytesNeverZerosOrAHang()
    {
        using var scratch = new Scratch();
        using var registry = new RegistryServer(scratch);
        var (src, _, blobs, _) = PushLargeTree(scratch, registry, "slow");
        using var slow = TestHttpServer.FaultyProxy($"http://{registry.Host}", every: 0, delayMs: 150);
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount($"127.0.0.1:{slow.Port}/{Repo}:slow", mnt);
        var worker = daemon.Client.Status().Pid;

        var outcomes = new List<string>();
        var failures = new List<Exception>();
        var readers = Enumerable.Range(0, 4).Select(i => new Thread(() =>
        {
            var name = $"big-{i:D2}";
            try
            {
                var data = File.ReadAllBytes(Path.Combine(mnt, name));
                Assert.True(data.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(src, name))), $"{name}: wrong bytes after the crash");
                lock (outcomes) outcomes.Add("data");
            }
            catch (IOException e) when (e.Message.Contains("Input/output error"))
            {
                lock (outcomes) outcomes.Add("EIO");
            }
            catch (Exception e)
            {
                lock (failures) failures.Add(e);
            }
        })).ToArray();
        foreach (var r in readers) r.Start();
        Thread.Sleep(400);   // the readers are now waiting on slow fetches
        Tools.Ok("kill", "-9", worker.ToString());
        var deadline = DateTime.UtcNow.AddSeconds(60);
        foreach (var r in readers)
            Assert.True(r.Join(deadline - DateTime.UtcNow > TimeSpan.Zero ? deadline - DateTime.UtcNow : TimeSpan.Zero), "a reader hung after the worker was killed");
        Assert.Empty(failures);
        Assert.Equal(4, outcomes.Count);

        // The new worker serves everything, and a re-read after an EIO gives the right bytes.
        Kernel.DropCaches();
        for (int i = 0; i < 4; i++)
            Assert.Equal(File.ReadAllBytes(Path.Combine(src, $"big-{i:D2}")), File.ReadAllBytes(Path.Combine(mnt, $"big-{i:D2}")));
        var status = daemon.Client.Status();
        Assert.NotEqual(worker, status.Pid);
        Assert.Equal(1, status.WorkerRestarts);
        // The readers were waiting in the kernel when the worker died: the new worker answered those events with
        // EIO (the kernel then retried the reads, which the new worker served).
        Assert.True(status.OrphansDenied > 0, $"no orphaned event was answered; outcomes {string.Join(",", outcomes)}");
    }

    [Fact]
    public void RegistryOutageGivesEioWithinTheTimeoutThenDataAgain()
    {
        using var scratch = new Scratch();
        using var registry = new RegistryServer(scratch);
        var (src, boot, blobs, reference) = PushLargeTree(scratch, registry, "outage");
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount(reference, mnt, "--timeout-ms", "2000", "--retries", "1");
        Assert.Equal(File.ReadAllBytes(Path.Combine(src, "big-00")), File.ReadAllBytes(Path.Combine(mnt, "big-00")));

        registry.Stop();
        // big-24 is far beyond any read-ahead that reading big-00 started.
        Assert.True(daemon.Status(mnt).Blobs.Single().FilledBytes < 8 << 20);
        var clock = Stopwatch.StartNew();
        var error = Assert.ThrowsAny<IOException>(() => File.ReadAllBytes(Path.Combine(mnt, "big-24")));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"EIO took {clock.Elapsed}");
        Assert.Contains("Input/output error", error.Message);
        Assert.True(daemon.Client.Status().EventsDenied > 0);

        registry.Start();
        Assert.Equal(File.ReadAllBytes(Path.Combine(src, "big-24")), File.ReadAllBytes(Path.Combine(mnt, "big-24")));
    }

    [Fact]
    public void ABlobCorruptedOnTheRegistryGivesEioForThatChunkOnly()
    {
        using var scratch = new Scratch();
        using var registry = new RegistryServer(scratch);
        var (src, boot, blobs, reference) = PushLargeTree(scratch, registry, "corrupt");
        var blobFile = Directory.GetFiles(blobs).Single();
        var table = TableOf(blobs);
        var victim = table.Chunks.OrderBy(c => c.StoredOffset).First();   // the first chunk of big-00
        var stored = registry.BlobDataPath("sha256:" + Path.GetFileName(blobFile));
        using (var f = new FileStream(stored, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = victim.StoredOffset + 100;
            int b = f.ReadByte();
            f.Position = victim.StoredOffset + 100;
            f.WriteByte((byte)(b ^ 0x5A));
        }
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount(reference, mnt);
        var error = Assert.ThrowsAny<IOException>(() => File.ReadAllBytes(Path.Combine(mnt, "big-00")));
        Assert.Contains("Input/output error", error.Message);
        foreach (var name in Directory.GetFiles(src).Select(Path.GetFileName).Where(n => n != "big-00"))
            Assert.Equal(File.ReadAllBytes(Path.Combine(src, name!)), File.ReadAllBytes(Path.Combine(mnt, name!)));
        var blob = daemon.Status(mnt).Blobs.Single();
        Assert.True(blob.Failures > 0);
        Assert.False(blob.Complete);
        Assert.Contains("fails its sha256 check", daemon.Log);
    }

    [Fact]
    public void ABootstrapCorruptedOnTheRegistryIsRefusedBeforeMounting()
    {
        using var scratch = new Scratch();
        using var registry = new RegistryServer(scratch);
        var (_, boot, _, reference) = PushLargeTree(scratch, registry, "badboot");
        var stored = registry.BlobDataPath(Rafs.Storage.BlobDigest.OfFile(boot).ToString());
        var bytes = File.ReadAllBytes(stored);
        bytes[^100] ^= 0x01;   // same size, different bytes
        File.WriteAllBytes(stored, bytes);
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        var refused = RafsCli.Run(["mount", reference, mnt, .. daemon.Flags]);
        Assert.NotEqual(0, refused.Exit);
        Assert.Contains("bootstrap", refused.Stderr);
        Assert.Contains("corrupt", refused.Stderr);
        Assert.False(Mounts.IsMountPoint(mnt));
        Assert.Empty(daemon.Client.List());
    }

    [Fact]
    public void TwoMountsOfImagesSharingABlobFetchAndCacheItOnce()
    {
        using var scratch = new Scratch();
        using var registry = new RegistryServer(scratch);
        var (src, boot, blobs, reference) = PushLargeTree(scratch, registry, "shared-a");
        var other = $"{registry.Host}/{Repo}-copy:shared-b";   // another repository naming the same blob
        RafsCli.Ok("push", boot, other, "--blob-dir", blobs);
        using var daemon = new DaemonSession(scratch);
        var first = scratch.Dir("mnt-a");
        var second = scratch.Dir("mnt-b");
        daemon.Mount(reference, first);
        daemon.Mount(other, second);
        Assert.Equal(File.ReadAllBytes(Path.Combine(src, "big-07")), File.ReadAllBytes(Path.Combine(first, "big-07")));
        long fetched = SettledFetchedBytes(daemon, first);   // read-ahead started by the read may still be running
        Assert.True(fetched > 0);
        Kernel.DropCaches();
        Assert.Equal(File.ReadAllBytes(Path.Combine(src, "big-07")), File.ReadAllBytes(Path.Combine(second, "big-07")));
        Assert.Equal(fetched, daemon.Status(second).Blobs.Single().FetchedBytes);   // one blob object: nothing fetched again
        Assert.Single(Directory.GetFiles(Path.Combine(daemon.StateDir, "cache"), "*.ondemand"));
        // Unmounting one image keeps the blob (and its mark) for the other.
        RafsCli.Ok(["umount", first, .. daemon.Flags]);
        TreeComparer.AssertSame(src, second);
    }

    /// <summary>The blob's fetched bytes once background read-ahead has finished (unchanged for half a second).</summary>
    private static long SettledFetchedBytes(DaemonSession daemon, string mountPoint)
    {
        long last = -1, now = daemon.Status(mountPoint).Blobs.Single().FetchedBytes;
        for (int i = 0; i < 60 && now != last; i++)
        {
            Thread.Sleep(500);
            (last, now) = (now, daemon.Status(mountPoint).Blobs.Single().FetchedBytes);
        }
        return now;
    }

    [Fact]
    public void ServerErrorsAndConnectionResetsAreRetried()
    {
        using var scratch = new Scratch();
        using var registry = new RegistryServer(scratch);
        var (src, _, blobs, _) = PushLargeTree(scratch, registry, "faults");
        using var proxy = TestHttpServer.FaultyProxy($"http://{registry.Host}", every: 3);
        using var daemon = new DaemonSession(scratch);
        var mnt = scratch.Dir("mnt");
        daemon.Mount($"127.0.0.1:{proxy.Port}/{Repo}:faults", mnt);
        TreeComparer.AssertSame(src, mnt);
        var status = daemon.Status(mnt);
        Assert.True(proxy.Faults > 3, $"only {proxy.Faults} faults injected");
        Assert.True(status.BackendRetries >= proxy.Faults - 1, $"{status.BackendRetries} retries for {proxy.Faults} faults");
        Assert.Equal(0, daemon.Client.Status().EventsDenied);
    }
}
