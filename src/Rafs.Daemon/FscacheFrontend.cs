using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Rafs.Interop;
using Rafs.Storage;

namespace Rafs.Daemon;

/// <summary>
/// The cachefiles on-demand frontend (EROFS over fscache, Linux 5.19 … 7.1 with CACHEFILES_ONDEMAND and
/// EROFS_FS_ONDEMAND). The kernel owns cache files in its cache directory and asks for what they lack: OPEN
/// names a cookie (the image's fsid for the bootstrap, a device slot's tag for a blob) and hands over an
/// anonymous fd; READ asks for a range, which is filled whole chunks at a time, verified, from the host blob
/// cache, written with pwrite on that fd, then completed with CACHEFILES_IOC_READ_COMPLETE; CLOSE drops the fd.
/// A READ that cannot be served is completed with nothing written, which the kernel turns into EIO for the reader.
/// </summary>
public sealed class FscacheFrontend : IMountFrontend
{
    /// <summary>Cookies of every Rafs image live in this fscache domain, so a blob shared by images is one cache object.</summary>
    public const string DefaultDomain = "rafs";
    private const int ENOENT = 2;
    private const int Block = Rafs.Format.ErofsFormat.BlockSize;
    private const int CopyBufferSize = 1 << 20;

    private interface IObjectContent
    {
        long Size { get; }
        /// <summary>Writes at least [offset, offset + count) into the kernel's cache object (aligned to what is verifiable).</summary>
        void CopyTo(SafeFileHandle anonymousFd, long offset, long count, Span<byte> buffer);
        bool NeedsFetch(long offset, long count);
    }

    /// <summary>
    /// The image's bootstrap: fetched and verified whole before the mount, so READs are local copies. Its size is
    /// rounded up to whole blocks: the kernel writes cache files with direct I/O, which takes only whole blocks.
    /// </summary>
    private sealed class BootstrapContent(string path) : IObjectContent
    {
        private readonly SafeFileHandle _file = File.OpenHandle(path);
        private readonly long _length = new FileInfo(path).Length;
        public long Size => (_length + Block - 1) & ~(Block - 1L);
        public bool NeedsFetch(long offset, long count) => false;

        public void CopyTo(SafeFileHandle anonymousFd, long offset, long count, Span<byte> buffer)
        {
            long start = offset & ~(Block - 1L), end = Math.Min(Size, (offset + count + Block - 1) & ~(Block - 1L));
            for (long done = start; done < end;)
            {
                var part = buffer[..(int)Math.Min(buffer.Length, end - done)];
                int have = (int)Math.Clamp(_length - done, 0, part.Length);
                for (int got = 0; got < have;)
                {
                    int n = RandomAccess.Read(_file, part[got..have], done + got);
                    if (n <= 0) throw new IOException($"bootstrap {path} ended at {done + got}, {_length - done - got} bytes short");
                    got += n;
                }
                part[have..].Clear();   // the tail of the last block, past the file's end
                RandomAccess.Write(anonymousFd, part, done);
                done += part.Length;
            }
        }

        public void Close() => _file.Dispose();
    }

    private sealed class BlobContent(OnDemandBlob blob) : IObjectContent
    {
        public long Size => blob.DeviceSize;
        public bool NeedsFetch(long offset, long count) => !blob.IsFilled(offset, count);

        public void CopyTo(SafeFileHandle anonymousFd, long offset, long count, Span<byte> buffer)
        {
            var (start, length) = blob.ChunkSpan(offset, count);   // whole chunks: block-aligned, as direct I/O needs
            for (long done = 0; done < length;)
            {
                var part = buffer[..(int)Math.Min(buffer.Length, length - done)];
                blob.Read(start + done, part);   // fills (fetch, decompress, verify) missing chunks first
                RandomAccess.Write(anonymousFd, part, start + done);
                done += part.Length;
            }
        }
    }

    private sealed record OpenObject(SafeFileHandle Fd, IObjectContent Content, string Cookie);

    private readonly CachefilesDevice _device;
    private readonly Action<string>? _log;
    private readonly Dictionary<string, OnDemandBlob> _blobs = [];                // by digest hex (the device slot tag)
    private readonly Dictionary<string, BootstrapContent> _images = [];           // by fsid
    private readonly Dictionary<uint, OpenObject> _objects = [];                  // by the kernel's object id
    private readonly RequestThreads _threads;
    private long _requests, _fills, _errors, _fillTicks, _opens, _closes;

    public string Name => Frontends.Fscache;
    public string Domain { get; }
    public string VolumeKey => "erofs," + Domain;
    public long Opens => Interlocked.Read(ref _opens);
    public long Closes => Interlocked.Read(ref _closes);

    public FrontendCounters Counters => new(Interlocked.Read(ref _requests), Interlocked.Read(ref _fills),
        Interlocked.Read(ref _errors), TimeSpan.FromTicks(Interlocked.Read(ref _fillTicks)));

    /// <param name="device">Bound in on-demand mode (by this process, or by a supervisor that keeps it open across crashes).</param>
    public FscacheFrontend(CachefilesDevice device, Action<string>? log = null, string domain = DefaultDomain)
    {
        if (domain.Length == 0 || domain.AsSpan().IndexOfAny(",= \n") >= 0)
            throw new ArgumentException($"fscache domain '{domain}' must be non-empty without ',', '=' or spaces");
        _device = device;
        _log = log;
        Domain = domain;
        _threads = new RequestThreads("fscache", "cachefiles", log);
    }

    /// <summary>The cache object key of an image mounted at <paramref name="mountPoint"/>: unique per mount, stable across restarts.</summary>
    public static string FsidOf(string bootstrap, string mountPoint)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(bootstrap) + "\n" + Path.GetFullPath(mountPoint)));
        return "rafs-" + Convert.ToHexStringLower(hash.AsSpan(0, 12));
    }

    public void Register(OnDemandBlob blob)
    {
        lock (_blobs) _blobs[blob.Digest.Hex] = blob;
    }

    public void Unregister(OnDemandBlob blob)
    {
        lock (_blobs) _blobs.Remove(blob.Digest.Hex);
    }

    public bool IsWatching(OnDemandBlob blob)
    {
        lock (_blobs) return !blob.IsComplete && _blobs.ContainsKey(blob.Digest.Hex);
    }

    public IDisposable MountImage(string bootstrap, string mountPoint, IReadOnlyList<OnDemandBlob> blobs, bool takeOver)
    {
        var fsid = FsidOf(bootstrap, mountPoint);
        lock (_images) _images[fsid] = new BootstrapContent(bootstrap);
        try
        {
            if (!takeOver) Mounts.Mount("none", mountPoint, "erofs", Mounts.MS_RDONLY, $"fsid={fsid},domain_id={Domain}");
        }
        catch
        {
            Forget(fsid);
            throw;
        }
        return new KernelMount(mountPoint, () => Forget(fsid));
    }

    private void Forget(string fsid)
    {
        lock (_images)
            if (_images.Remove(fsid, out var content)) content.Close();
    }

    /// <summary>
    /// Starts the request threads. A worker that replaces a dead one first asks the kernel to resend the
    /// requests that one had read but not answered (<c>restore</c>, Linux 6.2+; older kernels leave them hanging).
    /// </summary>
    public void Start(int threads, bool restore)
    {
        if (restore)
        {
            try
            {
                _device.Restore();
                _log?.Invoke("cachefiles: asked the kernel to resend requests in flight (restore)");
            }
            catch (PosixException e)
            {
                _log?.Invoke($"cachefiles: restore failed ({e.Message}); requests the previous worker held may hang");
            }
        }
        _threads.Start(threads, () =>
        {
            var message = new byte[CachefilesMessage.MaxSize];
            // The kernel passes our pwrite straight to the cache file with direct I/O: the buffer must be block-aligned.
            var buffer = AlignedMemory.Allocate(CopyBufferSize, Block);
            return () =>
            {
                if (!_device.WaitReadable(200)) return true;
                int n = _device.Read(message);
                if (n == 0) return true;   // another thread took it
                if (CachefilesMessage.Parse(message.AsSpan(0, n), out var error) is { } m) Handle(m, buffer.Span);
                else _log?.Invoke($"cachefiles: ignoring a malformed message ({error})");
                return true;
            };
        });
    }

    private void Handle(CachefilesMessage m, Span<byte> buffer)
    {
        Interlocked.Increment(ref _requests);
        switch (m.Opcode)
        {
            case CachefilesOpcode.Open:
                HandleOpen(m);
                break;
            case CachefilesOpcode.Read:
                HandleRead(m, buffer);
                break;
            case CachefilesOpcode.Close:
                Interlocked.Increment(ref _closes);
                OpenObject? closed;
                lock (_objects) _objects.Remove(m.ObjectId, out closed);
                closed?.Fd.Dispose();
                break;
        }
    }

    private void HandleOpen(CachefilesMessage m)
    {
        Interlocked.Increment(ref _opens);
        var fd = new SafeFileHandle(m.Fd, ownsHandle: true);
        string cookie = Encoding.ASCII.GetString(m.CookieKey);
        IObjectContent? content = null;
        if (m.VolumeKey == VolumeKey)
        {
            lock (_images)
                if (_images.TryGetValue(cookie, out var image)) content = image;
            if (content is null)
                lock (_blobs)
                    if (_blobs.TryGetValue(cookie, out var blob)) content = new BlobContent(blob);
        }
        if (content is null)
        {
            // Not ours (another domain, or an image this daemon does not know): the mount fails instead of reading holes.
            _log?.Invoke($"cachefiles: OPEN of unknown cookie '{cookie}' in volume '{m.VolumeKey}': refused");
            fd.Dispose();
            _device.CompleteOpen(m.MessageId, -ENOENT);
            return;
        }
        lock (_objects)
        {
            if (_objects.Remove(m.ObjectId, out var stale)) stale.Fd.Dispose();
            _objects[m.ObjectId] = new OpenObject(fd, content, cookie);
        }
        _device.CompleteOpen(m.MessageId, content.Size);
    }

    private void HandleRead(CachefilesMessage m, Span<byte> buffer)
    {
        OpenObject? target;
        lock (_objects) _objects.TryGetValue(m.ObjectId, out target);
        if (target is null)
        {
            // No fd to complete it with: the kernel fails it when it drops the object.
            Interlocked.Increment(ref _errors);
            _log?.Invoke($"cachefiles: READ {m.MessageId} for unknown object {m.ObjectId}");
            return;
        }
        try
        {
            long offset = (long)m.Offset, count = (long)m.Length;
            if (offset + count > target.Content.Size) count = Math.Max(0, target.Content.Size - offset);
            if (count > 0)
            {
                bool fetch = target.Content.NeedsFetch(offset, count);
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                target.Content.CopyTo(target.Fd, offset, count, buffer);
                if (fetch)
                {
                    Interlocked.Increment(ref _fills);
                    Interlocked.Add(ref _fillTicks, System.Diagnostics.Stopwatch.GetElapsedTime(started).Ticks);
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or HttpRequestException or ObjectDisposedException)
        {
            // Nothing unverified was written; completing now makes the kernel find the hole and fail the read with EIO.
            Interlocked.Increment(ref _errors);
            _log?.Invoke($"cachefiles: READ of {m.Length} bytes at {m.Offset} of {target.Cookie} failed (reader gets EIO): {e.Message}");
        }
        CachefilesDevice.CompleteRead(target.Fd, m.MessageId);
    }

    /// <summary>Stops the threads and closes every object fd (the device itself belongs to the caller).</summary>
    public void Dispose()
    {
        _threads.Stop();
        lock (_objects)
        {
            foreach (var o in _objects.Values) o.Fd.Dispose();
            _objects.Clear();
        }
        lock (_images)
        {
            foreach (var i in _images.Values) i.Close();
            _images.Clear();
        }
    }
}

