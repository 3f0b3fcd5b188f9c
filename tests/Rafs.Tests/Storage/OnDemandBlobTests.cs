using System.Security.Cryptography;
using Rafs.Storage;

namespace Rafs.Tests.Storage;

/// <summary>
/// The frontend-independent fill path: claims, merged requests, read-ahead, verification, the persisted record.
/// The kernel paths are covered in Rafs.KernelTests; here a blob file on disk is read through a backend that
/// counts requests and can be slowed down or corrupted.
/// </summary>
public sealed class OnDemandBlobTests : IDisposable
{
    private const int ChunkSize = 64 << 10;
    private readonly string _dir = Directory.CreateTempSubdirectory("rafs-ondemand-").FullName;
    private readonly string _blobPath;
    private readonly BlobDigest _digest;
    private readonly long _deviceSize;
    private readonly byte[][] _chunks;

    public OnDemandBlobTests()
    {
        var random = new Random(3);
        _chunks = Enumerable.Range(0, 40).Select(_ => { var b = new byte[ChunkSize]; random.NextBytes(b); return b; }).ToArray();
        _blobPath = Path.Combine(_dir, "blob");
        using var writer = new BlobWriter(_blobPath, ChunkCompression.Zstd);
        foreach (var c in _chunks) writer.AddChunk(c, SHA256.HashData(c));
        (_digest, _, _deviceSize) = writer.Finish();
    }

    /// <summary>A backend over the blob file: counts range requests, may wait, may flip a byte it returns.</summary>
    private sealed class FileBackend(string path, int delayMs = 0) : IBlobBackend
    {
        public int Requests;
        public long? CorruptAt;
        public string Name => path;
        public long GetLength(BlobDigest blob) => new FileInfo(path).Length;

        public void Read(BlobDigest blob, long offset, Span<byte> buffer)
        {
            Interlocked.Increment(ref Requests);
            if (delayMs > 0) Thread.Sleep(delayMs);
            using var f = File.OpenHandle(path);
            BlobTable.ReadExactly(f, buffer, offset, path);
            if (CorruptAt is { } at && at >= offset && at < offset + buffer.Length) buffer[(int)(at - offset)] ^= 0xFF;
        }
    }

    private OnDemandBlob Open(IBlobBackend backend, byte[]? tableDigest = null) =>
        OnDemandBlob.Open(backend, _digest, Path.Combine(_dir, "cache"), _deviceSize, tableDigest);

    private Microsoft.Win32.SafeHandles.SafeFileHandle Target(OnDemandBlob blob) =>
        File.OpenHandle(blob.CachePath, FileMode.Open, FileAccess.ReadWrite);

    private byte[] CacheBytes(OnDemandBlob blob, int chunk)
    {
        using var f = File.OpenHandle(blob.CachePath);
        var b = new byte[ChunkSize];
        RandomAccess.Read(f, b, (long)chunk * ChunkSize);
        return b;
    }

    [Fact]
    public void ConcurrentMissesOnOneChunkFetchItOnce()
    {
        var backend = new FileBackend(_blobPath, delayMs: 100);
        using var blob = Open(backend);
        blob.AmplifyBytes = 0;
        int afterTable = backend.Requests;
        using var target = Target(blob);
        var threads = Enumerable.Range(0, 8).Select(_ => new Thread(() => blob.Fill(5 * ChunkSize + 100, 4096, target))).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(1, backend.Requests - afterTable);
        Assert.Equal(1, blob.ChunksFetched);
        Assert.Equal(_chunks[5], CacheBytes(blob, 5));
    }

    [Fact]
    public void AdjacentMissingChunksAreOneRequest()
    {
        var backend = new FileBackend(_blobPath);
        using var blob = Open(backend);
        blob.AmplifyBytes = 0;
        int afterTable = backend.Requests;
        using var target = Target(blob);
        blob.Fill(10L * ChunkSize, 6L * ChunkSize, target);
        Assert.Equal(1, backend.Requests - afterTable);
        Assert.Equal(6, blob.ChunksFetched);
        for (int i = 10; i < 16; i++) Assert.Equal(_chunks[i], CacheBytes(blob, i));
        Assert.False(blob.IsFilled(16L * ChunkSize, 1));
    }

    [Fact]
    public void IsolatedMissesFetchExactlyTheirChunksSequentialOnesReadAhead()
    {
        var backend = new FileBackend(_blobPath);
        using var blob = Open(backend);
        using var target = Target(blob);
        blob.Fill(20L * ChunkSize, 4096, target);      // isolated: exactly one chunk
        blob.Fill(3L * ChunkSize, 4096, target);       // isolated again
        Assert.Equal(2, blob.ChunksFetched);
        blob.Fill(4L * ChunkSize, 4096, target);       // continues where chunk 3 ended: read-ahead starts
        Assert.True(blob.ChunksFetched > 3, $"no read-ahead: {blob.ChunksFetched} chunks");
        Assert.True(blob.IsFilled(5L * ChunkSize, ChunkSize));
        Assert.True(blob.BytesFetched <= 3L * ChunkSize + (256 << 10) + 1024 * 8, $"read-ahead overshot: {blob.BytesFetched}");
    }

    [Fact]
    public void ACorruptChunkIsNeverWrittenNorRecorded()
    {
        var backend = new FileBackend(_blobPath);
        using var blob = Open(backend);
        blob.AmplifyBytes = 0;
        var victim = blob.Table.Chunks.Single(c => c.DeviceOffset == 7L * ChunkSize);
        backend.CorruptAt = victim.StoredOffset + 17;
        using var target = Target(blob);
        Assert.Throws<InvalidDataException>(() => blob.Fill(7L * ChunkSize, 4096, target));
        Assert.False(blob.IsFilled(7L * ChunkSize, 1));
        Assert.Equal(new byte[ChunkSize], CacheBytes(blob, 7));   // still a hole
        Assert.True(blob.Failures > 0);
        backend.CorruptAt = null;
        blob.Fill(7L * ChunkSize, 4096, target);                  // the next read fetches it again
        Assert.Equal(_chunks[7], CacheBytes(blob, 7));
    }

    [Fact]
    public void ATableThatIsNotTheManifestsIsRejected()
    {
        var wrong = SHA256.HashData("not the table"u8);
        var e = Assert.Throws<InvalidDataException>(() => Open(new FileBackend(_blobPath), wrong));
        Assert.Contains("chunk table", e.Message);
    }

    [Fact]
    public void AReopenedBlobResumesFromItsRecordWithoutTheNetwork()
    {
        var first = new FileBackend(_blobPath);
        using (var blob = Open(first))
        {
            blob.AmplifyBytes = 0;
            using var target = Target(blob);
            blob.Fill(0, 3L * ChunkSize, target);
        }
        var second = new FileBackend(_blobPath);
        using var again = Open(second);
        Assert.Equal(3, again.FilledChunks);
        Assert.Equal(0, second.Requests);   // the verified table is cached next to the blob's cache file
        Assert.True(again.IsFilled(0, 3L * ChunkSize));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
