using System.Buffers;
using System.Security.Cryptography;
using Rafs.Format;

namespace Rafs.Storage;

/// <summary>
/// Writes a blob in its stored form: compressed chunks in order, then the chunk table and the footer. Each chunk
/// is also given a 4 KiB-aligned place in the uncompressed device layout, which is what EROFS chunk indexes name.
/// Compression runs on worker threads; output order (and so the blob digest) does not depend on timing.
/// </summary>
public sealed class BlobWriter : IDisposable
{
    private readonly FileStream _file;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly ChunkCompression _compression;
    private readonly int _maxInFlight;
    private readonly Queue<Task<Pending>> _inFlight = new();
    private readonly List<BlobChunkEntry> _entries = [];
    private long _storedBytes;

    private sealed record Pending(byte[] Buffer, int StoredSize, ChunkCompression Compression, long DeviceOffset, int Size, byte[] Digest);

    public BlobWriter(string path, ChunkCompression compression, int workers = 0)
    {
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        _compression = compression;
        _maxInFlight = 2 * (workers > 0 ? workers : Environment.ProcessorCount);
    }

    /// <summary>Blocks of the device layout allocated so far.</summary>
    public long DeviceBlocks { get; private set; }
    public int ChunkCount => _entries.Count + _inFlight.Count;

    /// <summary>Adds a chunk (the caller has deduplicated it) and returns its block address in the device layout.</summary>
    public uint AddChunk(ReadOnlySpan<byte> data, ReadOnlySpan<byte> digest)
    {
        if (DeviceBlocks > uint.MaxValue) throw new InvalidOperationException("blob device layout exceeds 2^32 blocks");
        uint block = (uint)DeviceBlocks;
        long deviceOffset = DeviceBlocks << ErofsFormat.BlockSizeBits;
        DeviceBlocks += (data.Length + ErofsFormat.BlockSize - 1) >> ErofsFormat.BlockSizeBits;
        var input = ArrayPool<byte>.Shared.Rent(data.Length);
        data.CopyTo(input);
        int size = data.Length;
        var digestCopy = digest.ToArray();
        var compression = _compression;
        _inFlight.Enqueue(Task.Run(() =>
        {
            var output = ArrayPool<byte>.Shared.Rent(ChunkCodec.MaxCompressedSize(size));
            int stored = ChunkCodec.Compress(compression, input.AsSpan(0, size), output);
            if (stored < 0)
            {
                ArrayPool<byte>.Shared.Return(output);
                return new Pending(input, size, ChunkCompression.None, deviceOffset, size, digestCopy);
            }
            ArrayPool<byte>.Shared.Return(input);
            return new Pending(output, stored, compression, deviceOffset, size, digestCopy);
        }));
        while (_inFlight.Count > _maxInFlight) WriteOldest();
        return block;
    }

    private void WriteOldest()
    {
        var p = _inFlight.Dequeue().GetAwaiter().GetResult();
        var stored = p.Buffer.AsSpan(0, p.StoredSize);
        _file.Write(stored);
        _hash.AppendData(stored);
        _entries.Add(new BlobChunkEntry(_storedBytes, p.StoredSize, p.DeviceOffset, p.Size, p.Compression, p.Digest));
        _storedBytes += p.StoredSize;
        ArrayPool<byte>.Shared.Return(p.Buffer);
    }

    /// <summary>Writes the chunk table and footer; returns the blob's digest (sha256 of all stored bytes).</summary>
    public (BlobDigest Digest, long StoredBytes, long DeviceSize) Finish()
    {
        while (_inFlight.Count > 0) WriteOldest();
        var table = new byte[(long)_entries.Count * BlobChunkEntry.EntrySize];
        for (int i = 0; i < _entries.Count; i++) _entries[i].Write(table.AsSpan(i * BlobChunkEntry.EntrySize));
        long deviceSize = DeviceBlocks << ErofsFormat.BlockSizeBits;
        var footer = new byte[BlobFooter.FooterSize];
        new BlobFooter(BlobFooter.CurrentVersion, _entries.Count, _storedBytes, deviceSize, SHA256.HashData(table)).Write(footer);
        foreach (var part in new[] { table, footer })
        {
            _file.Write(part);
            _hash.AppendData(part);
        }
        _file.Flush();
        return (BlobDigest.FromHash(_hash.GetHashAndReset()), _storedBytes + table.Length + footer.Length, deviceSize);
    }

    public void Dispose()
    {
        // Let in-flight compressions finish before their buffers go back to the pool.
        foreach (var t in _inFlight) t.Wait();
        _file.Dispose();
        _hash.Dispose();
    }
}
