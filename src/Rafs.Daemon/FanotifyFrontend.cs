using Microsoft.Win32.SafeHandles;
using Rafs.Interop;
using Rafs.Storage;

namespace Rafs.Daemon;

/// <summary>
/// The fanotify frontend: pre-content marks on the blobs' sparse cache files; handler threads answer each
/// FAN_PRE_ACCESS event from the filled-chunk record when the data is there, otherwise fill the chunks first.
/// A failure answers FAN_DENY_ERRNO(EIO), so the reader gets EIO and never unverified or missing data.
/// </summary>
public sealed class FanotifyFrontend : IDisposable
{
    private readonly Fanotify _group = new();
    private readonly Dictionary<(ulong Device, ulong Inode), OnDemandBlob> _blobs = [];
    private readonly List<Thread> _threads = [];
    private readonly Action<string>? _log;
    private volatile bool _stopping;
    private long _events, _filled, _denied;

    public FanotifyFrontend(Action<string>? log = null) => _log = log;

    public long Events => Interlocked.Read(ref _events);
    public long EventsThatFilled => Interlocked.Read(ref _filled);
    public long Denied => Interlocked.Read(ref _denied);

    /// <summary>Marks the blob's cache file; call before mount(2) opens it.</summary>
    public void Register(OnDemandBlob blob)
    {
        var st = PosixFs.LStat(blob.CachePath);
        lock (_blobs) _blobs[(st.Device, st.Inode)] = blob;
        _group.MarkPreAccess(blob.CachePath);
    }

    public void Start(int threads = 2)
    {
        for (int i = 0; i < threads; i++)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"rafs-fanotify-{i}" };
            _threads.Add(thread);
            thread.Start();
        }
    }

    private void Loop()
    {
        var buffer = new byte[64 * 1024];
        while (!_stopping)
        {
            if (!_group.WaitReadable(200)) continue;
            foreach (var e in _group.Read(buffer)) Handle(e);   // empty when another thread took the events
        }
    }

    private void Handle(PreAccessEvent e)
    {
        Interlocked.Increment(ref _events);
        uint response = Fanotify.FAN_ALLOW;
        try
        {
            using var handle = new SafeFileHandle(e.Fd, ownsHandle: false);
            var st = PosixFs.Stat(handle);
            OnDemandBlob? blob;
            lock (_blobs) _blobs.TryGetValue((st.Device, st.Inode), out blob);
            if (blob is not null && e.Count > 0 && !blob.IsComplete && !blob.IsFilled(e.Offset, e.Count))
            {
                blob.Fill(e.Offset, e.Count, handle);
                Interlocked.Increment(ref _filled);
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            response = Fanotify.FAN_DENY_EIO;
            Interlocked.Increment(ref _denied);
            _log?.Invoke($"read of {e.Count} bytes at {e.Offset} denied (EIO): {ex.Message}");
        }
        _group.Respond(e.Fd, response);
    }

    public void Dispose()
    {
        _stopping = true;
        foreach (var t in _threads) t.Join();
        _group.Dispose();
    }
}

/// <summary>
/// An on-demand mount: the bootstrap is local and verified; every blob is a sparse cache file under fanotify
/// marks, filled from the backend as the kernel reads. Dispose unmounts and stops the handlers.
/// </summary>
public sealed class OnDemandMount : IDisposable
{
    private readonly List<OnDemandBlob> _blobs;

    public string MountPoint { get; }
    public FanotifyFrontend Frontend { get; }
    public IReadOnlyList<OnDemandBlob> Blobs => _blobs;

    private OnDemandMount(string mountPoint, FanotifyFrontend frontend, List<OnDemandBlob> blobs)
    {
        MountPoint = mountPoint;
        Frontend = frontend;
        _blobs = blobs;
    }

    public static OnDemandMount Mount(string bootstrap, string mountPoint, IBlobBackend backend, string cacheDirectory,
        int threads = 2, Action<string>? log = null)
    {
        bootstrap = Path.GetFullPath(bootstrap);
        mountPoint = Path.GetFullPath(mountPoint);
        var slots = ImageMounter.ReadDeviceTable(bootstrap);
        var blobs = new List<OnDemandBlob>();
        var frontend = new FanotifyFrontend(log);
        try
        {
            foreach (var slot in slots)
            {
                var digest = BlobDigest.Parse(slot.Tag);
                var blob = OnDemandBlob.Open(backend, digest, cacheDirectory, (long)slot.Blocks * Rafs.Format.ErofsFormat.BlockSize);
                blobs.Add(blob);
                if (!blob.IsComplete) frontend.Register(blob);   // marks must precede mount(2)
            }
            frontend.Start(threads);
            string? data = blobs.Count == 0 ? null : string.Join(',', blobs.Select(b => "device=" + b.CachePath));
            Mounts.Mount(bootstrap, mountPoint, "erofs", Mounts.MS_RDONLY, data);
            return new OnDemandMount(mountPoint, frontend, blobs);
        }
        catch
        {
            frontend.Dispose();
            foreach (var b in blobs) b.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (Mounts.IsMountPoint(MountPoint))
        {
            try { Mounts.Unmount(MountPoint); }
            catch (PosixException) { Mounts.Unmount(MountPoint, detach: true); }
        }
        Frontend.Dispose();
        foreach (var b in _blobs) b.Dispose();
    }
}
