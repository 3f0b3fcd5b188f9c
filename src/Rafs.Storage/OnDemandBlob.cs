using System.Buffers;
using Microsoft.Win32.SafeHandles;
using Rafs.Format;

namespace Rafs.Storage;

/// <summary>
/// A blob's sparse cache file in the exact device layout, filled chunk by chunk from a backend when read.
/// This is the fetch → decompress → verify → write path every kernel frontend shares: a chunk is verified
/// against its sha256 before it is written where the kernel can see it, and a per-chunk record next to the
/// cache file (one byte per chunk) lets a restarted daemon resume without fetching anything again.
/// Concurrent misses on the same chunk fetch it once: a chunk is claimed by one filler, the others wait.
/// </summary>
public sealed class OnDemandBlob : IDisposable
{
    /// <summary>Adjacent missing chunks are fetched in one backend request up to this many stored bytes.</summary>
    public const int MaxMergedRequest = 8 << 20;

    /// <summary>Default ceiling of the read-ahead window (stored bytes a sequential miss adds to its request).</summary>
    public const int DefaultAmplifyBytes = 4 << 20;
    private const int FirstWindow = 256 << 10;
    private const int Streams = 8;

    private readonly BlobChunkEntry[] _chunks;   // by device offset
    private readonly int[] _byStored;            // chunk indexes in stored order
    private readonly byte[] _filled;             // persisted: 1 = verified data is in the cache file
    private readonly bool[] _inFlight;           // claimed by a filler right now
    private readonly FileStream _record;
    private readonly object _lock = new();
    private readonly List<IBlobBackend> _backends = [];
    // Sequential streams: where the last window ends, its size, where it starts (the marker), last use.
    private readonly (long End, int Window, long Marker, long Used)[] _streams = new (long, int, long, long)[Streams];
    private SafeFileHandle? _writer;
    private bool _disposed;
    private int _background;
    private long _streamClock;
    private int _missing;
    private long _chunksFetched, _bytesFetched, _requests, _failures;

    /// <summary>
    /// Ceiling of the read-ahead window (0: fetch only what is read). A miss that continues where an earlier
    /// fetch ended is part of a sequential stream (a file read through, or files read in build order): it adds
    /// the chunks that follow it in the blob to the same request, the window doubling from 256 KiB up to this
    /// ceiling, as kernel readahead does. Isolated misses fetch exactly their chunks, so a start-up that reads a
    /// scattered few percent of an image fetches little more than it reads, while a full read needs few requests
    /// (each costs milliseconds against a registry). Eight streams per blob are tracked.
    /// </summary>
    public int AmplifyBytes { get; set; } = DefaultAmplifyBytes;

    public BlobDigest Digest { get; }
    public BlobTable Table { get; }
    public string CachePath { get; }
    public long DeviceSize => Table.Footer.DeviceSize;
    public int ChunkCount => _chunks.Length;
    public int FilledChunks => _chunks.Length - Volatile.Read(ref _missing);
    public bool IsComplete => Volatile.Read(ref _missing) == 0;
    /// <summary>Chunks this process fetched and verified (not those found in the record).</summary>
    public long ChunksFetched => Interlocked.Read(ref _chunksFetched);
    /// <summary>Stored (compressed) bytes this process read from backends for chunks.</summary>
    public long BytesFetched => Interlocked.Read(ref _bytesFetched);
    public long BackendRequests => Interlocked.Read(ref _requests);
    /// <summary>Chunks that failed to fetch or verify (each a read answered with EIO).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    public long FilledBytes
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _chunks.Length; i++) if (Volatile.Read(ref _filled[i]) != 0) sum += _chunks[i].Size;
            return sum;
        }
    }

    private OnDemandBlob(BlobDigest digest, BlobTable table, string cachePath)
    {
        Digest = digest;
        Table = table;
        CachePath = cachePath;
        _chunks = table.Chunks.OrderBy(c => c.DeviceOffset).ToArray();
        _byStored = Enumerable.Range(0, _chunks.Length).OrderBy(i => _chunks[i].StoredOffset).ToArray();
        _record = new FileStream(cachePath + ".filled", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        _filled = new byte[_chunks.Length];
        _inFlight = new bool[_chunks.Length];
        if (_record.Length == _filled.Length) _record.ReadExactly(_filled);
        else
        {
            _record.SetLength(0);   // a record of another shape is not trusted: start empty
            _record.SetLength(_filled.Length);
        }
        _missing = _filled.Count(b => b == 0);
    }

    /// <summary>
    /// Opens the blob's cache entry: the chunk table comes from the local copy (<c>&lt;hex&gt;.table</c>) when one
    /// was verified before, otherwise from the backend (footer, then table: two range reads), and must match
    /// <paramref name="expectedTableDigest"/> (the manifest's annotation) when one is known.
    /// </summary>
    public static OnDemandBlob Open(IBlobBackend backend, BlobDigest digest, string cacheDirectory, long expectedDeviceSize,
        byte[]? expectedTableDigest = null)
    {
        Directory.CreateDirectory(cacheDirectory);
        var basePath = Path.Combine(Path.GetFullPath(cacheDirectory), digest.Hex);
        var table = LoadLocalTable(basePath + ".table", digest) ?? FetchTable(backend, digest, basePath + ".table");
        CheckMatches(digest, table, expectedDeviceSize, expectedTableDigest);
        var cachePath = basePath + ".ondemand";
        using (var file = File.OpenHandle(cachePath, FileMode.OpenOrCreate, FileAccess.ReadWrite))
            if (RandomAccess.GetLength(file) != table.Footer.DeviceSize)
            {
                RandomAccess.SetLength(file, 0);   // a cache file of another size holds nothing we can trust
                RandomAccess.SetLength(file, table.Footer.DeviceSize);
                File.Delete(cachePath + ".filled");
            }
        var blob = new OnDemandBlob(digest, table, cachePath);
        blob.AddBackend(backend);
        return blob;
    }

    /// <summary>Throws unless this blob is the one an image names: its device size, and its table digest when known.</summary>
    public void CheckMatches(long expectedDeviceSize, byte[]? expectedTableDigest) =>
        CheckMatches(Digest, Table, expectedDeviceSize, expectedTableDigest);

    private static void CheckMatches(BlobDigest digest, BlobTable table, long expectedDeviceSize, byte[]? expectedTableDigest)
    {
        if (expectedTableDigest is not null && !table.Footer.TableDigest.AsSpan().SequenceEqual(expectedTableDigest))
            throw new InvalidDataException($"blob {digest}: its chunk table is not the one the image manifest names; the blob is corrupt or substituted");
        if (table.Footer.DeviceSize != expectedDeviceSize)
            throw new InvalidDataException($"blob {digest}: device layout of {table.Footer.DeviceSize} bytes, the image expects {expectedDeviceSize}");
    }

    private static BlobTable? LoadLocalTable(string path, BlobDigest digest)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var file = File.OpenHandle(path);
            return BlobTable.ReadFooterAndTable(file, $"cached table of blob {digest} ({path})");
        }
        catch (InvalidDataException)
        {
            File.Delete(path);   // damaged local copy: fetch it again
            return null;
        }
    }

    private static BlobTable FetchTable(IBlobBackend backend, BlobDigest digest, string localCopy)
    {
        long length = backend.GetLength(digest);
        var where = $"blob {digest} at {backend.Name}";
        byte[] footerBytes = [];
        var footer = BlobTable.ReadFooter((offset, buffer) =>
        {
            backend.Read(digest, offset, buffer);
            footerBytes = buffer.ToArray();
        }, length, where);
        var bytes = new byte[footer.TableSize + BlobFooter.FooterSize];
        backend.Read(digest, footer.TableOffset, bytes.AsSpan(0, (int)footer.TableSize));
        footerBytes.CopyTo(bytes.AsSpan((int)footer.TableSize));
        var table = BlobTable.Parse(footer, bytes.AsSpan(0, (int)footer.TableSize), where);
        var temporary = localCopy + $".tmp-{Environment.ProcessId}-{Environment.CurrentManagedThreadId}";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, localCopy, overwrite: true);
        return table;
    }

    /// <summary>Another source of the same blob (a second image sharing it); fills try the newest first.</summary>
    public void AddBackend(IBlobBackend backend)
    {
        lock (_backends) _backends.Add(backend);
    }

    public void RemoveBackend(IBlobBackend backend)
    {
        lock (_backends) _backends.Remove(backend);
    }

    /// <summary>True when every chunk overlapping the range is already in the cache file.</summary>
    public bool IsFilled(long offset, long count)
    {
        var (first, last) = Overlapping(offset, count);
        for (int i = first; i <= last; i++)
            if (Volatile.Read(ref _filled[i]) == 0) return false;
        return true;
    }

    /// <summary>
    /// A handle on the cache file whose writes raise no fanotify events (a dup of an event's fd), so read-ahead can
    /// be written in the background after the event that started it was answered. Without one, read-ahead is
    /// fetched in the same request as the miss. The blob owns the handle from here on.
    /// </summary>
    public void AttachWriter(SafeFileHandle writer)
    {
        lock (_lock)
        {
            if (_writer is null && !_disposed) { _writer = writer; return; }
        }
        writer.Dispose();
    }

    public bool HasWriter
    {
        get { lock (_lock) return _writer is not null; }
    }

    /// <summary>
    /// Makes the range readable: fetches, decodes, verifies and writes (through <paramref name="target"/>, e.g. the
    /// fanotify event's fd, whose writes raise no events) every missing chunk that overlaps it. Chunks another
    /// caller is fetching are waited for, not fetched again. Throws (and writes nothing unverified) on failure.
    /// A read that continues a sequential stream also starts read-ahead (see <see cref="AmplifyBytes"/>).
    /// </summary>
    public void Fill(long offset, long count, SafeFileHandle target)
    {
        var (first, last) = Overlapping(offset, count);
        var mine = new List<int>();
        while (true)
        {
            bool othersBusy = false;
            mine.Clear();
            List<int>? ahead = null;
            lock (_lock)
            {
                for (int i = first; i <= last; i++)
                {
                    if (_filled[i] != 0) continue;
                    if (_inFlight[i]) { othersBusy = true; continue; }
                    _inFlight[i] = true;
                    mine.Add(i);
                }
                if (mine.Count == 0)
                {
                    if (!othersBusy) return;
                    // The reader caught up with read-ahead in flight: start the next window, then wait.
                    if (_writer is not null) ahead = AdvanceStreams(first, last);
                    if (ahead is null) Monitor.Wait(_lock, 1000);   // woken when a filler finishes; then look again
                }
                else
                {
                    ahead = ClaimAhead(mine);
                    if (ahead is not null && _writer is null)
                    {
                        mine.AddRange(ahead);   // no event-free handle yet: read ahead in the same request
                        ahead = null;
                    }
                }
            }
            if (ahead is not null) StartBackground(ahead);
            if (mine.Count == 0) continue;
            try
            {
                FetchClaimed(mine, target);
            }
            catch (Exception) when (IsFilled(offset, count))
            {
                // only read-ahead chunks failed: the read itself is served; they are fetched again when read
            }
            finally
            {
                Release(mine);
            }
        }
    }

    /// <summary>
    /// Reads device bytes for a frontend that serves data itself (FUSE, or fscache copying into the kernel's cache
    /// object): missing chunks are filled first, then the range is read from the cache file through the blob's
    /// writer handle (opened here when no frontend attached one).
    /// </summary>
    public void Read(long offset, Span<byte> buffer)
    {
        if (offset < 0 || offset > DeviceSize - buffer.Length)
            throw new InvalidDataException($"blob {Digest}: read of {buffer.Length} bytes at {offset} is outside its {DeviceSize}-byte device");
        var handle = WriterHandle();
        if (!IsFilled(offset, buffer.Length)) Fill(offset, buffer.Length, handle);
        else Touch(offset, buffer.Length);
        while (!buffer.IsEmpty)
        {
            int n = RandomAccess.Read(handle, buffer, offset);
            if (n <= 0) throw new IOException($"blob {Digest}: cache file {CachePath} ends at {offset}; it was truncated under the daemon");
            buffer = buffer[n..];
            offset += n;
        }
    }

    private SafeFileHandle WriterHandle()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _writer ??= File.OpenHandle(CachePath, FileMode.Open, FileAccess.ReadWrite);
        }
    }

    /// <summary>
    /// The device range covering whole chunks around [offset, offset + count), clipped to the device: what a frontend
    /// hands the kernel for a request, so every byte it passes on belongs to a chunk verified as a whole.
    /// </summary>
    public (long Offset, long Length) ChunkSpan(long offset, long count)
    {
        var (first, last) = Overlapping(offset, count);
        long start = offset, end = offset + count;
        if (first <= last)
        {
            start = Math.Min(start, _chunks[first].DeviceOffset);
            end = Math.Max(end, _chunks[last].DeviceOffset + RoundToBlock(_chunks[last].Size));
        }
        end = Math.Min(end, DeviceSize);
        start = Math.Max(0, Math.Min(start, end));
        return (start, end - start);
    }

    /// <summary>
    /// Called for reads whose data is present: when one reaches the read-ahead window of a stream, the next
    /// window is started, so a sequential reader keeps finding its data already fetched.
    /// </summary>
    public void Touch(long offset, long count)
    {
        if (AmplifyBytes <= 0 || IsComplete) return;
        var (first, last) = Overlapping(offset, count);
        if (first > last) return;
        List<int>? ahead;
        lock (_lock)
        {
            if (_writer is null) return;
            ahead = AdvanceStreams(first, last);
        }
        if (ahead is not null) StartBackground(ahead);
    }

    private void Release(List<int> claimed)
    {
        lock (_lock)
        {
            foreach (int i in claimed) _inFlight[i] = false;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Fetches claimed read-ahead chunks on the thread pool, writing through the attached writer.</summary>
    private void StartBackground(List<int> ahead)
    {
        Interlocked.Increment(ref _background);
        ThreadPool.UnsafeQueueUserWorkItem(_ =>
        {
            try
            {
                SafeFileHandle? writer;
                lock (_lock) writer = _disposed ? null : _writer;
                if (writer is not null) FetchClaimed(ahead, writer);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or HttpRequestException or ObjectDisposedException or UnauthorizedAccessException)
            {
                // read-ahead is a guess: its chunks are fetched again (and errors reported) when they are read
            }
            finally
            {
                Release(ahead);
                Interlocked.Decrement(ref _background);
            }
        }, null);
    }

    /// <summary>
    /// Read-ahead for a miss (caller holds the lock): a miss where a stream ended continues it with a doubled
    /// window; any other miss starts a stream without read-ahead. Returns the claimed chunks, or null.
    /// </summary>
    private List<int>? ClaimAhead(List<int> mine)
    {
        if (AmplifyBytes <= 0) return null;
        long start = mine.Min(i => _chunks[i].StoredOffset);
        int last = mine.MaxBy(i => _chunks[i].StoredOffset);
        long end = _chunks[last].StoredOffset + _chunks[last].StoredSize;
        int stream = Array.FindIndex(_streams, s => s.Used > 0 && s.End == start);
        if (stream < 0)
        {
            stream = 0;   // a new stream replaces the least recently used
            for (int k = 1; k < Streams; k++) if (_streams[k].Used < _streams[stream].Used) stream = k;
            _streams[stream] = (end, 0, -1, ++_streamClock);
            return null;
        }
        return ClaimWindow(stream, end, NextWindow(_streams[stream].Window));
    }

    /// <summary>Starts the next window of every stream whose current window the range [first, last] reached.</summary>
    private List<int>? AdvanceStreams(int first, int last)
    {
        List<int>? result = null;
        for (int k = 0; k < Streams; k++)
        {
            var s = _streams[k];
            if (s.Used == 0 || s.Marker < 0) continue;
            bool reached = false;
            for (int i = first; i <= last && !reached; i++)
                reached = _chunks[i].StoredOffset >= s.Marker && _chunks[i].StoredOffset < s.End;
            if (!reached) continue;
            if (ClaimWindow(k, s.End, NextWindow(s.Window)) is { } claimed) (result ??= []).AddRange(claimed);
        }
        return result;
    }

    /// <summary>A stream's next window: double the last, from 256 KiB up to the ceiling.</summary>
    private int NextWindow(int window) => (int)Math.Min(AmplifyBytes, Math.Max(FirstWindow, 2L * window));

    /// <summary>Claims the missing chunks stored from <paramref name="from"/> on, up to <paramref name="window"/> bytes.</summary>
    private List<int>? ClaimWindow(int stream, long from, int window)
    {
        var claimed = new List<int>();
        long end = from, budget = window;
        int r = FirstStoredAtOrAfter(from);
        for (; r < _byStored.Length; r++)
        {
            int i = _byStored[r];
            var entry = _chunks[i];
            if (entry.StoredOffset != end || entry.StoredSize > budget) break;
            budget -= entry.StoredSize;
            end += entry.StoredSize;
            if (_filled[i] != 0 || _inFlight[i]) continue;
            _inFlight[i] = true;
            claimed.Add(i);
        }
        // The marker is where the reader, arriving, triggers the next window.
        _streams[stream] = (end, window, end > from ? from : -1, ++_streamClock);
        return claimed.Count > 0 ? claimed : null;
    }

    private int FirstStoredAtOrAfter(long offset)
    {
        int lo = 0, hi = _byStored.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_chunks[_byStored[mid]].StoredOffset < offset) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>Fetches the claimed chunks, merging runs that are adjacent in the stored blob into one request.</summary>
    private void FetchClaimed(List<int> claimed, SafeFileHandle target)
    {
        var ordered = claimed.Select(i => (Index: i, Entry: _chunks[i])).OrderBy(c => c.Entry.StoredOffset).ToList();
        byte[] data = ArrayPool<byte>.Shared.Rent(BlobTable.MaxChunkSize);
        try
        {
            int start = 0;
            while (start < ordered.Count)
            {
                int end = start + 1;
                long runStart = ordered[start].Entry.StoredOffset;
                long runEnd = runStart + ordered[start].Entry.StoredSize;
                while (end < ordered.Count && ordered[end].Entry.StoredOffset == runEnd &&
                       runEnd + ordered[end].Entry.StoredSize - runStart <= MaxMergedRequest)
                    runEnd += ordered[end++].Entry.StoredSize;
                FetchRun(ordered, start, end, runStart, (int)(runEnd - runStart), data, target);
                start = end;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(data);
        }
    }

    private void FetchRun(List<(int Index, BlobChunkEntry Entry)> ordered, int start, int end, long runStart, int runLength,
        byte[] data, SafeFileHandle target)
    {
        byte[] stored = ArrayPool<byte>.Shared.Rent(Math.Max(runLength, 1));
        try
        {
            // A source whose bytes fail verification (a stale mirror, a damaged copy) is skipped for the next one
            // naming the same blob; only when every source fails does the read fail.
            int k = start;
            var backends = Backends();
            for (int b = 0; k < end; b++)
            {
                try
                {
                    ReadFrom(backends, ref b, runStart, stored.AsSpan(0, runLength));
                    Interlocked.Increment(ref _requests);
                    Interlocked.Add(ref _bytesFetched, runLength);
                }
                catch
                {
                    Interlocked.Add(ref _failures, end - k);
                    throw;
                }
                for (; k < end; k++)
                {
                    var (index, entry) = ordered[k];
                    try
                    {
                        BlobTable.DecodeChunk(entry, stored.AsSpan((int)(entry.StoredOffset - runStart), entry.StoredSize), data, $"blob {Digest}");
                    }
                    catch (InvalidDataException) when (b + 1 < backends.Length)
                    {
                        break;   // try the rest of the run from the next source
                    }
                    catch
                    {
                        Interlocked.Increment(ref _failures);
                        throw;
                    }
                    RandomAccess.Write(target, data.AsSpan(0, entry.Size), entry.DeviceOffset);
                    MarkFilled(index);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(stored);
        }
    }

    private IBlobBackend[] Backends()
    {
        IBlobBackend[] backends;
        lock (_backends) backends = [.. Enumerable.Reverse(_backends)];
        if (backends.Length == 0) throw new IOException($"blob {Digest}: no source is attached to fetch it from");
        return backends;
    }

    /// <summary>Reads from <paramref name="backends"/>[b], moving on to the next source while one fails.</summary>
    private void ReadFrom(IBlobBackend[] backends, ref int b, long offset, Span<byte> buffer)
    {
        for (; ; b++)
        {
            try
            {
                backends[b].Read(Digest, offset, buffer);
                return;
            }
            catch (Exception e) when (b + 1 < backends.Length && e is IOException or InvalidDataException or HttpRequestException)
            {
                // the next source of the same blob may still answer
            }
        }
    }

    private void MarkFilled(int index)
    {
        bool completed;
        lock (_lock)
        {
            if (_filled[index] != 0) return;
            _filled[index] = 1;
            RandomAccess.Write(_record.SafeFileHandle, _filled.AsSpan(index, 1), index);
            completed = --_missing == 0;
        }
        Interlocked.Increment(ref _chunksFetched);
        if (completed) Completed?.Invoke(this);
    }

    /// <summary>Raised once, by whichever filler (a reader's or read-ahead) stored the last missing chunk.</summary>
    public event Action<OnDemandBlob>? Completed;

    /// <summary>Chunk indexes [first, last] whose device range overlaps [offset, offset + count); empty when none.</summary>
    private (int First, int Last) Overlapping(long offset, long count)
    {
        long end = offset + Math.Max(count, 1);
        int lo = 0, hi = _chunks.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_chunks[mid].DeviceOffset + RoundToBlock(_chunks[mid].Size) <= offset) lo = mid + 1; else hi = mid;
        }
        int last = lo - 1;
        while (last + 1 < _chunks.Length && _chunks[last + 1].DeviceOffset < end) last++;
        return (lo, last);
    }

    private static long RoundToBlock(int size) => (size + ErofsFormat.BlockSize - 1L) & ~(ErofsFormat.BlockSize - 1L);

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            Monitor.PulseAll(_lock);
        }
        for (int i = 0; i < 500 && Volatile.Read(ref _background) > 0; i++) Thread.Sleep(10);   // let read-ahead finish
        lock (_lock)
        {
            _writer?.Dispose();
            _writer = null;
        }
        _record.Dispose();
    }
}

/// <summary>
/// The host's blob cache: one <see cref="OnDemandBlob"/> per digest, shared by every image that names it, so a
/// blob common to many images is fetched and stored once. Entries are reference-counted by their users.
/// </summary>
public sealed class BlobCache(string directory, int amplifyBytes = OnDemandBlob.DefaultAmplifyBytes) : IDisposable
{
    private readonly Dictionary<BlobDigest, (OnDemandBlob Blob, int Users)> _entries = [];

    public string Directory { get; } = Path.GetFullPath(directory);

    public OnDemandBlob Acquire(IBlobBackend backend, BlobDigest digest, long deviceSize, byte[]? tableDigest)
    {
        lock (_entries)
        {
            if (_entries.TryGetValue(digest, out var entry))
            {
                entry.Blob.CheckMatches(deviceSize, tableDigest);
                entry.Blob.AddBackend(backend);
                _entries[digest] = (entry.Blob, entry.Users + 1);
                return entry.Blob;
            }
            var blob = OnDemandBlob.Open(backend, digest, Directory, deviceSize, tableDigest);
            blob.AmplifyBytes = amplifyBytes;
            _entries[digest] = (blob, 1);
            return blob;
        }
    }

    /// <summary>Drops one user; returns true when that was the last and the blob was closed.</summary>
    public bool Release(OnDemandBlob blob, IBlobBackend backend)
    {
        lock (_entries)
        {
            blob.RemoveBackend(backend);
            if (!_entries.TryGetValue(blob.Digest, out var entry)) return false;
            if (entry.Users > 1)
            {
                _entries[blob.Digest] = (entry.Blob, entry.Users - 1);
                return false;
            }
            _entries.Remove(blob.Digest);
            blob.Dispose();
            return true;
        }
    }

    public void Dispose()
    {
        lock (_entries)
        {
            foreach (var e in _entries.Values) e.Blob.Dispose();
            _entries.Clear();
        }
    }
}
