using Microsoft.Win32.SafeHandles;
using Rafs.Format;

namespace Rafs.Storage;

/// <summary>
/// A blob's sparse cache file in the exact device layout, filled chunk by chunk from a backend when read. Every
/// chunk is verified before it is written where the kernel can see it; a per-chunk record of what is filled
/// (one byte per chunk, next to the cache file) lets a restarted daemon resume without fetching again.
/// </summary>
public sealed class OnDemandBlob : IDisposable
{
    private readonly IBlobBackend _backend;
    private readonly BlobChunkEntry[] _chunks;   // by device offset
    private readonly byte[] _filled;
    private readonly FileStream _record;
    private readonly object _fillLock = new();
    private int _missing;

    public BlobDigest Digest { get; }
    public BlobTable Table { get; }
    public string CachePath { get; }
    public bool IsComplete => Volatile.Read(ref _missing) == 0;
    public long ChunksFetched { get; private set; }

    private OnDemandBlob(IBlobBackend backend, BlobDigest digest, BlobTable table, string cachePath)
    {
        _backend = backend;
        Digest = digest;
        Table = table;
        CachePath = cachePath;
        _chunks = table.Chunks.OrderBy(c => c.DeviceOffset).ToArray();
        _record = new FileStream(cachePath + ".filled", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        _filled = new byte[_chunks.Length];
        if (_record.Length == _filled.Length) _record.ReadExactly(_filled);
        else _record.SetLength(_filled.Length);
        _missing = _filled.Count(b => b == 0);
    }

    /// <summary>Fetches the chunk table (footer first: two range reads) and prepares the sparse cache file.</summary>
    public static OnDemandBlob Open(IBlobBackend backend, BlobDigest digest, string cacheDirectory, long expectedDeviceSize)
    {
        long length = backend.GetLength(digest);
        if (length < BlobFooter.FooterSize) throw new InvalidDataException($"blob {digest} at {backend.Name} is too small to be a blob");
        var footerBytes = new byte[BlobFooter.FooterSize];
        backend.Read(digest, length - BlobFooter.FooterSize, footerBytes);
        var footer = BlobFooter.Read(footerBytes, $"blob {digest}");
        if (footer.TableOffset + footer.TableSize + BlobFooter.FooterSize != length)
            throw new InvalidDataException($"blob {digest}: footer does not match the blob's length {length}");
        var tableBytes = new byte[footer.TableSize];
        backend.Read(digest, footer.TableOffset, tableBytes);
        var table = BlobTable.Parse(footer, tableBytes, $"blob {digest}");
        if (footer.DeviceSize != expectedDeviceSize)
            throw new InvalidDataException($"blob {digest}: device layout of {footer.DeviceSize} bytes, the image expects {expectedDeviceSize}");
        Directory.CreateDirectory(cacheDirectory);
        var cachePath = Path.Combine(Path.GetFullPath(cacheDirectory), digest.Hex + ".ondemand");
        using (var file = File.OpenHandle(cachePath, FileMode.OpenOrCreate, FileAccess.ReadWrite))
            if (RandomAccess.GetLength(file) != footer.DeviceSize) RandomAccess.SetLength(file, footer.DeviceSize);
        return new OnDemandBlob(backend, digest, table, cachePath);
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
    /// Makes the range readable: fetches, decodes, verifies and writes (through <paramref name="target"/>, e.g. the
    /// event's fd) every missing chunk that overlaps it. Concurrent callers fetch a chunk once.
    /// </summary>
    public void Fill(long offset, long count, SafeFileHandle target)
    {
        var (first, last) = Overlapping(offset, count);
        byte[]? stored = null, data = null;
        for (int i = first; i <= last; i++)
        {
            if (Volatile.Read(ref _filled[i]) != 0) continue;
            lock (_fillLock)
            {
                if (_filled[i] != 0) continue;
                var entry = _chunks[i];
                stored ??= new byte[ChunkCodec.MaxCompressedSize(BlobTable.MaxChunkSize)];
                data ??= new byte[BlobTable.MaxChunkSize];
                _backend.Read(Digest, entry.StoredOffset, stored.AsSpan(0, entry.StoredSize));
                BlobTable.DecodeChunk(entry, stored.AsSpan(0, entry.StoredSize), data, $"blob {Digest}");
                RandomAccess.Write(target, data.AsSpan(0, entry.Size), entry.DeviceOffset);
                _filled[i] = 1;
                RandomAccess.Write(_record.SafeFileHandle, _filled.AsSpan(i, 1), i);
                _missing--;
                ChunksFetched++;
            }
        }
    }

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

    public void Dispose() => _record.Dispose();
}
