using Rafs.Image;
using Rafs.Interop;
using Rafs.Storage;

namespace Rafs.Daemon;

/// <summary>
/// An on-demand mount: the bootstrap is local and verified; every blob is a shared sparse cache file in the host
/// blob cache, filled from the backend as the kernel reads, through one of the frontends. Dispose unmounts and
/// releases the blobs.
/// </summary>
public sealed class OnDemandMount : IDisposable
{
    private readonly BlobCache _cache;
    private readonly IBlobBackend _backend;
    private readonly IDisposable _mounted;
    private readonly IDisposable? _owned;
    private bool _disposed;

    public string MountPoint { get; }
    public string Bootstrap { get; }
    public IMountFrontend Frontend { get; }
    public IReadOnlyList<OnDemandBlob> Blobs { get; }

    private OnDemandMount(string mountPoint, string bootstrap, IMountFrontend frontend, BlobCache cache, IBlobBackend backend,
        IReadOnlyList<OnDemandBlob> blobs, IDisposable mounted, IDisposable? owned)
    {
        MountPoint = mountPoint;
        Bootstrap = bootstrap;
        Frontend = frontend;
        _cache = cache;
        _backend = backend;
        Blobs = blobs;
        _mounted = mounted;
        _owned = owned;
    }

    /// <summary>A self-contained fanotify mount with its own frontend and cache (tests, benchmarks, single-image use).</summary>
    public static OnDemandMount Mount(string bootstrap, string mountPoint, IBlobBackend backend, string cacheDirectory,
        int threads = 4, Action<string>? log = null, int amplifyBytes = OnDemandBlob.DefaultAmplifyBytes)
    {
        var frontend = new FanotifyFrontend(log);
        frontend.Start(threads);
        return MountOwned(bootstrap, mountPoint, backend, cacheDirectory, frontend, amplifyBytes);
    }

    /// <summary>Like <see cref="Mount(string,string,IBlobBackend,string,int,Action{string},int)"/> through any frontend, which the mount then owns.</summary>
    public static OnDemandMount MountOwned(string bootstrap, string mountPoint, IBlobBackend backend, string cacheDirectory,
        IMountFrontend frontend, int amplifyBytes = OnDemandBlob.DefaultAmplifyBytes)
    {
        var cache = new BlobCache(cacheDirectory, amplifyBytes);
        try
        {
            return Mount(bootstrap, mountPoint, backend, cache, frontend, _ => null, takeOver: false, owned: new Owned(frontend, cache));
        }
        catch
        {
            frontend.Dispose();
            cache.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens every blob of <paramref name="bootstrap"/>'s device table in <paramref name="cache"/>, registers them
    /// with the frontend, then mounts (or, with <paramref name="takeOver"/>, serves a mount a previous worker made).
    /// </summary>
    public static OnDemandMount Mount(string bootstrap, string mountPoint, IBlobBackend backend, BlobCache cache, IMountFrontend frontend,
        Func<BlobDigest, byte[]?> tableDigests, bool takeOver, IDisposable? owned = null)
    {
        bootstrap = Path.GetFullPath(bootstrap);
        mountPoint = Path.GetFullPath(mountPoint);
        if (!takeOver && !Directory.Exists(mountPoint))
            throw new DirectoryNotFoundException($"mount point {mountPoint} does not exist: create it first");
        var slots = ImageMounter.ReadDeviceTable(bootstrap);
        var blobs = new List<OnDemandBlob>();
        try
        {
            foreach (var slot in slots)
            {
                if (!BlobDigest.TryParse(slot.Tag, out var digest))
                    throw new InvalidDataException($"{bootstrap}: device slot tag '{slot.Tag}' is not a blob digest");
                var blob = cache.Acquire(backend, digest, (long)slot.Blocks * Rafs.Format.ErofsFormat.BlockSize, tableDigests(digest));
                blobs.Add(blob);
                frontend.Register(blob);   // fanotify marks must precede mount(2); fscache must know the cookies
            }
            var mounted = frontend.MountImage(bootstrap, mountPoint, blobs, takeOver);
            return new OnDemandMount(mountPoint, bootstrap, frontend, cache, backend, blobs, mounted, owned);
        }
        catch
        {
            foreach (var b in blobs) Release(cache, frontend, b, backend);
            throw;
        }
    }

    private static void Release(BlobCache cache, IMountFrontend frontend, OnDemandBlob blob, IBlobBackend backend)
    {
        if (cache.Release(blob, backend)) frontend.Unregister(blob);
    }

    /// <summary>Unmounts (lazily when busy) and releases the blobs; a blob no other mount uses is unregistered.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _mounted.Dispose();
        foreach (var b in Blobs) Release(_cache, Frontend, b, _backend);
        _owned?.Dispose();
    }

    private sealed class Owned(IMountFrontend frontend, BlobCache cache) : IDisposable
    {
        public void Dispose()
        {
            frontend.Dispose();
            cache.Dispose();
        }
    }
}

/// <summary>
/// The FUSE frontend: each image is its own FUSE session served by <see cref="FuseServer"/> from Rafs's reader
/// over the on-demand blobs. A FUSE session dies with the process that serves it (readers then get ENOTCONN, never
/// a hang), so a restarted worker cannot adopt it: it detaches the dead mount and mounts the image afresh.
/// </summary>
public sealed class FuseFrontend(int threads, Action<string>? log = null) : IMountFrontend
{
    private readonly List<FuseServer> _servers = [];

    public string Name => Frontends.Fuse;

    public FrontendCounters Counters
    {
        get
        {
            lock (_servers) return new(_servers.Sum(s => s.Requests), 0, _servers.Sum(s => s.Errors), TimeSpan.Zero);
        }
    }

    /// <summary>Requests of one FUSE opcode over all sessions.</summary>
    public long RequestsOf(uint opcode)
    {
        lock (_servers) return _servers.Sum(s => s.RequestsOf(opcode));
    }

    public void Register(OnDemandBlob blob) { }
    public void Unregister(OnDemandBlob blob) { }
    public bool IsWatching(OnDemandBlob blob) => !blob.IsComplete;

    public IDisposable MountImage(string bootstrap, string mountPoint, IReadOnlyList<OnDemandBlob> blobs, bool takeOver)
    {
        if (takeOver && Mounts.IsMountPoint(mountPoint))
        {
            log?.Invoke($"{mountPoint}: the FUSE session died with the previous worker; remounting it");
            Mounts.Unmount(mountPoint, detach: true);
        }
        var image = ErofsImage.Open(bootstrap, new OnDemandDeviceResolver(blobs));
        FuseServer server;
        try
        {
            server = FuseServer.Mount(image, mountPoint, threads, log);
        }
        catch
        {
            image.Dispose();
            throw;
        }
        lock (_servers) _servers.Add(server);
        return new Session(this, server);
    }

    private sealed class Session(FuseFrontend owner, FuseServer server) : IDisposable
    {
        public void Dispose()
        {
            server.Dispose();
            lock (owner._servers) owner._servers.Remove(server);
        }
    }

    public void Dispose()
    {
        List<FuseServer> all;
        lock (_servers) all = [.. _servers];
        foreach (var s in all) s.Dispose();
    }
}
