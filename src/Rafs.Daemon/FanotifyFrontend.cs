using Microsoft.Win32.SafeHandles;
using Rafs.Interop;
using Rafs.Storage;

namespace Rafs.Daemon;

/// <summary>
/// The fanotify frontend: pre-content marks on the blobs' sparse cache files; handler threads answer each
/// FAN_PRE_ACCESS event from the filled-chunk record when the data is there, otherwise fill the chunks first.
/// A failure answers FAN_DENY_ERRNO(EIO), so the reader gets EIO and never unverified or missing data.
/// A blob that becomes complete is unmarked: the kernel then reads it without asking anyone.
/// </summary>
public sealed class FanotifyFrontend : IMountFrontend
{
    private readonly Fanotify _group;
    private readonly Dictionary<(ulong Device, ulong Inode), OnDemandBlob> _blobs = [];
    private readonly HashSet<string> _marked = [];
    private readonly Action<string>? _log;
    private readonly RequestThreads _threads;
    private long _events, _filled, _denied, _fillTicks;

    public FanotifyFrontend(Action<string>? log = null) : this(new Fanotify(), log) { }

    /// <summary>Uses <paramref name="group"/>, e.g. one a supervisor created and keeps open across crashes.</summary>
    public FanotifyFrontend(Fanotify group, Action<string>? log = null)
    {
        _group = group;
        _log = log;
        _threads = new RequestThreads("fanotify", "fanotify handler", log, pauseAfterErrorMs: 50);
    }

    public string Name => Frontends.Fanotify;
    public FrontendCounters Counters => new(Events, EventsThatFilled, Denied, FillTime);
    public long Events => Interlocked.Read(ref _events);
    public long EventsThatFilled => Interlocked.Read(ref _filled);
    public long Denied => Interlocked.Read(ref _denied);
    /// <summary>Time spent in events that had to fetch, for µs-per-fill figures.</summary>
    public TimeSpan FillTime => TimeSpan.FromTicks(Interlocked.Read(ref _fillTicks));

    /// <summary>Marks the blob's cache file (unless complete); call before mount(2) opens it.</summary>
    public void Register(OnDemandBlob blob)
    {
        var st = PosixFs.LStat(blob.CachePath);
        lock (_blobs)
        {
            if (_blobs.TryAdd((st.Device, st.Inode), blob)) blob.Completed += OnCompleted;
            if (!blob.IsComplete && !_marked.Add(blob.CachePath)) return;
        }
        if (blob.IsComplete)
        {
            // A mark a crashed worker left on a blob that is complete now: remove it, nobody needs the events.
            try { _group.Unmark(blob.CachePath); } catch (PosixException) { }
            return;
        }
        _group.MarkPreAccess(blob.CachePath);
        if (blob.IsComplete) RemoveMark(blob);   // completed while being marked
    }

    private void OnCompleted(OnDemandBlob blob)
    {
        _log?.Invoke($"blob {blob.Digest.Hex} is complete: mark removed, the kernel reads it directly now");
        RemoveMark(blob);
    }

    /// <summary>Forgets a blob no mount uses any more and removes its mark.</summary>
    public void Unregister(OnDemandBlob blob)
    {
        var st = PosixFs.LStat(blob.CachePath);
        lock (_blobs)
            if (_blobs.Remove((st.Device, st.Inode))) blob.Completed -= OnCompleted;
        RemoveMark(blob);
    }

    public bool IsWatching(OnDemandBlob blob)
    {
        lock (_blobs) return _marked.Contains(blob.CachePath);
    }

    /// <summary>A file-backed mount whose devices are the blobs' cache files (marked by <see cref="Register"/> already).</summary>
    public IDisposable MountImage(string bootstrap, string mountPoint, IReadOnlyList<OnDemandBlob> blobs, bool takeOver)
    {
        if (!takeOver)
        {
            string? data = blobs.Count == 0 ? null : string.Join(',', blobs.Select(b => "device=" + b.CachePath));
            Mounts.Mount(bootstrap, mountPoint, "erofs", Mounts.MS_RDONLY, data);
        }
        return new KernelMount(mountPoint);
    }

    private void RemoveMark(OnDemandBlob blob)
    {
        lock (_blobs)
            if (!_marked.Remove(blob.CachePath)) return;
        try { _group.Unmark(blob.CachePath); }
        catch (PosixException e) { _log?.Invoke($"removing the mark on {blob.CachePath}: {e.Message}"); }
    }

    public void Start(int threads = 4) => _threads.Start(threads, () =>
    {
        var buffer = new byte[64 * 1024];
        return () =>
        {
            if (_group.WaitReadable(200))
                foreach (var e in _group.Read(buffer)) Handle(e);   // empty when another thread took the events
            return true;
        };
    });

    private void Handle(PreAccessEvent e)
    {
        Interlocked.Increment(ref _events);
        uint response = Fanotify.FAN_ALLOW;
        try
        {
            using var handle = new SafeFileHandle(e.Fd, ownsHandle: false);
            OnDemandBlob? blob;
            var st = PosixFs.Stat(handle);
            lock (_blobs) _blobs.TryGetValue((st.Device, st.Inode), out blob);
            if (blob is null)
            {
                // A marked file nobody here knows (state lost): serving it would show holes as zeros.
                throw new IOException($"no blob is registered for the cache file (device {st.Device}, inode {st.Inode})");
            }
            if (e.Count > 0 && !blob.IsComplete)
            {
                if (!blob.HasWriter) blob.AttachWriter(PosixFs.Duplicate(handle));   // event fds write without raising events: read-ahead uses it
                if (blob.IsFilled(e.Offset, e.Count)) blob.Touch(e.Offset, e.Count);
                else
                {
                    long started = System.Diagnostics.Stopwatch.GetTimestamp();
                    blob.Fill(e.Offset, e.Count, handle);
                    Interlocked.Add(ref _fillTicks, System.Diagnostics.Stopwatch.GetElapsedTime(started).Ticks);
                    Interlocked.Increment(ref _filled);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or HttpRequestException or PosixException)
        {
            response = Fanotify.FAN_DENY_EIO;
            Interlocked.Increment(ref _denied);
            _log?.Invoke($"read of {e.Count} bytes at {e.Offset} denied (EIO): {ex.Message}");
        }
        _group.Respond(e.Fd, response);
    }

    /// <summary>Stops the handler threads and closes the group (its marks go with it).</summary>
    public void Dispose()
    {
        _threads.Stop();
        _group.Dispose();
    }
}

