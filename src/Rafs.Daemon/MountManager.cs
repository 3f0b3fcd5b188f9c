using System.Text.Json;
using Rafs.Interop;
using Rafs.Storage;
using Rafs.Storage.Remote;

namespace Rafs.Daemon;

/// <summary>
/// The daemon's mounts: each is an image source (registry, HTTP, directory), its verified bootstrap and an
/// <see cref="OnDemandMount"/> over the host-wide <see cref="BlobCache"/>. The list is persisted in the state
/// directory after every change so a restarted worker takes the kernel's mounts over instead of losing them.
/// </summary>
public sealed class MountManager : IDisposable
{
    private sealed record Entry(MountRecord Record, IImageSource Source, OnDemandMount Mount);

    private readonly Dictionary<string, Entry> _mounts = [];
    private readonly object _lock = new();
    private readonly string _stateDirectory, _statePath;
    private readonly Action<string> _log;

    public BlobCache Cache { get; }
    /// <summary>The frontends this kernel and daemon offer, by name.</summary>
    public IReadOnlyDictionary<string, IMountFrontend> Frontends { get; }

    public MountManager(string stateDirectory, IEnumerable<IMountFrontend> frontends, Action<string> log, int amplifyBytes = OnDemandBlob.DefaultAmplifyBytes)
    {
        Directory.CreateDirectory(stateDirectory);
        _stateDirectory = stateDirectory;
        _statePath = StatePath(stateDirectory);
        Cache = new BlobCache(Path.Combine(stateDirectory, "cache"), amplifyBytes);
        Frontends = frontends.ToDictionary(f => f.Name);
        _log = log;
    }

    public static string StatePath(string stateDirectory) => Path.Combine(stateDirectory, "mounts.json");

    /// <summary>The mounts a worker recorded in <paramref name="stateDirectory"/> (none when there is no record).</summary>
    public static List<MountRecord> ReadRecords(string stateDirectory)
    {
        var path = StatePath(stateDirectory);
        return File.Exists(path) ? JsonSerializer.Deserialize(File.ReadAllBytes(path), DaemonJson.Default.ListMountRecord) ?? [] : [];
    }

    public static RemoteOptions OptionsOf(MountRequest r) => new()
    {
        PlainHttp = r.PlainHttp,
        CaFile = r.CaFile,
        Credentials = r.Credentials,
        DockerConfigPath = r.DockerConfig,
        Mirrors = r.Mirrors,
        RequestTimeout = r.TimeoutMs is { } ms ? TimeSpan.FromMilliseconds(ms) : new RemoteOptions().RequestTimeout,
        Retries = r.Retries ?? new RemoteOptions().Retries,
    };

    /// <summary>Fetches the manifest and bootstrap (verified), opens the blobs and mounts.</summary>
    public MountStatus Mount(MountRequest request)
    {
        var mountPoint = Path.GetFullPath(request.MountPoint);
        request.MountPoint = mountPoint;
        lock (_lock)
            if (_mounts.ContainsKey(mountPoint)) throw new InvalidOperationException($"{mountPoint} is already a Rafs mount; unmount it first");
        if (Mounts.IsMountPoint(mountPoint)) throw new InvalidOperationException($"{mountPoint} is already a mount point");
        var frontend = Rafs.Daemon.Frontends.Choose(Frontends, request.Frontend);
        var source = ImageSources.Open(request.Reference, OptionsOf(request));
        try
        {
            var manifest = source.GetManifest();
            _log($"mounting {source.Reference} ({manifest.ManifestDigest}) on {mountPoint} through {frontend.Name}: {manifest.Blobs.Count} blob(s)");
            var bootstrap = ImageSources.FetchBootstrap(source, manifest, Cache.Directory);
            var record = new MountRecord
            {
                Request = request,
                Manifest = manifest.ManifestDigest.ToString(),
                Bootstrap = bootstrap,
                Frontend = frontend.Name,
                Tables = manifest.Blobs.Where(b => RafsManifest.TableDigest(b) is not null)
                    .ToDictionary(b => b.BlobDigest.ToString(), b => b.Annotation(RafsMediaTypes.AnnotationTableDigest)!),
            };
            var mount = OnDemandMount.Mount(bootstrap, mountPoint, source.Blobs, Cache, frontend, TablesOf(record), takeOver: false);
            var entry = new Entry(record, source, mount);
            lock (_lock)
            {
                _mounts[mountPoint] = entry;
                Save();
            }
            return StatusOf(entry);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    private static Func<BlobDigest, byte[]?> TablesOf(MountRecord record) => digest =>
        record.Tables.TryGetValue(digest.ToString(), out var text) && BlobDigest.TryParse(text, out var d) ? Convert.FromHexString(d.Hex) : null;

    /// <summary>
    /// Takes over the mounts a previous worker recorded that the kernel still has: blobs are reopened from the
    /// local cache (no network needed), the marks it placed still stand in the inherited group.
    /// </summary>
    public int Reattach()
    {
        List<MountRecord> records;
        try
        {
            records = ReadRecords(_stateDirectory);
        }
        catch (JsonException e)
        {
            _log($"{_statePath} is unreadable ({e.Message}); starting with no mounts");
            return 0;
        }
        int attached = 0;
        foreach (var record in records)
        {
            var mountPoint = record.Request.MountPoint;
            if (!Mounts.IsMountPoint(mountPoint))
            {
                _log($"{mountPoint} is no longer mounted; forgetting it");
                continue;
            }
            IImageSource? source = null;
            try
            {
                if (!Frontends.TryGetValue(record.Frontend, out var frontend))
                    throw new IOException($"it was mounted through {record.Frontend}, which this worker does not have");
                source = ImageSources.Open(record.Request.Reference, OptionsOf(record.Request));
                var mount = OnDemandMount.Mount(record.Bootstrap, mountPoint, source.Blobs, Cache, frontend, TablesOf(record), takeOver: true);
                lock (_lock) _mounts[mountPoint] = new Entry(record, source, mount);
                attached++;
                _log($"took over {mountPoint} ({record.Request.Reference}, {record.Frontend})");
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or PosixException)
            {
                source?.Dispose();
                _log($"cannot take over {mountPoint}: {e.Message}; unmounting it so readers get errors, not holes");
                try { Mounts.Unmount(mountPoint, detach: true); } catch (PosixException) { }
            }
        }
        lock (_lock) Save();
        return attached;
    }

    public void Unmount(string mountPoint)
    {
        mountPoint = Path.GetFullPath(mountPoint);
        Entry? entry;
        lock (_lock)
        {
            if (!_mounts.Remove(mountPoint, out entry))
                throw new KeyNotFoundException($"{mountPoint} is not mounted by this daemon");
            Save();
        }
        entry.Mount.Dispose();
        entry.Source.Dispose();
        _log($"unmounted {mountPoint}");
    }

    public List<MountStatus> List()
    {
        lock (_lock) return _mounts.Values.Select(StatusOf).OrderBy(m => m.MountPoint, StringComparer.Ordinal).ToList();
    }

    public int Count
    {
        get { lock (_lock) return _mounts.Count; }
    }

    private MountStatus StatusOf(Entry e) => new()
    {
        MountPoint = e.Mount.MountPoint,
        Reference = e.Record.Request.Reference,
        Manifest = e.Record.Manifest,
        Bootstrap = e.Record.Bootstrap,
        Frontend = e.Mount.Frontend.Name,
        BackendBytes = e.Source.Counters.BytesRead,
        BackendRequests = e.Source.Counters.Requests,
        BackendRetries = e.Source.Counters.Retries,
        Blobs = e.Mount.Blobs.Select(b => new BlobStatus
        {
            Digest = b.Digest.ToString(),
            DeviceSize = b.DeviceSize,
            Chunks = b.ChunkCount,
            FilledChunks = b.FilledChunks,
            FilledBytes = b.FilledBytes,
            FetchedBytes = b.BytesFetched,
            FetchedChunks = b.ChunksFetched,
            Requests = b.BackendRequests,
            Failures = b.Failures,
            Complete = b.IsComplete,
            Marked = e.Mount.Frontend.IsWatching(b),
        }).ToList(),
    };

    private void Save()
    {
        var records = _mounts.Values.Select(e => e.Record).ToList();
        var temporary = _statePath + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
        {
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);   // may hold credentials
            JsonSerializer.Serialize(file, records, DaemonJson.Default.ListMountRecord);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, _statePath, overwrite: true);
    }

    /// <summary>Unmounts everything (the daemon is shutting down cleanly) and forgets it.</summary>
    public void UnmountAll()
    {
        List<string> all;
        lock (_lock) all = [.. _mounts.Keys];
        foreach (var m in all)
        {
            try { Unmount(m); }
            catch (Exception e) when (e is PosixException or IOException or KeyNotFoundException) { _log($"unmounting {m}: {e.Message}"); }
        }
    }

    public void Dispose()
    {
        UnmountAll();
        Cache.Dispose();
    }
}
