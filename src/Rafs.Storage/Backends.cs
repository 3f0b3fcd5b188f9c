namespace Rafs.Storage;

/// <summary>Where stored blobs come from: "give me N bytes of blob X at offset O". Retries and caching are decorators.</summary>
public interface IBlobBackend
{
    string Name { get; }
    long GetLength(BlobDigest blob);
    void Read(BlobDigest blob, long offset, Span<byte> buffer);
}

/// <summary>A directory of stored blobs named by digest, with counters of what was read (for laziness checks).</summary>
public sealed class LocalDirectoryBackend(string directory) : IBlobBackend
{
    private readonly BlobDirectory _blobs = new(directory);
    private long _bytesRead, _requests;

    public string Name => _blobs.Path;
    public long BytesRead => Interlocked.Read(ref _bytesRead);
    public long Requests => Interlocked.Read(ref _requests);

    public long GetLength(BlobDigest blob) => new FileInfo(Existing(blob)).Length;

    public void Read(BlobDigest blob, long offset, Span<byte> buffer)
    {
        using var file = File.OpenHandle(Existing(blob));
        BlobTable.ReadExactly(file, buffer, offset, _blobs.PathOf(blob));
        Interlocked.Add(ref _bytesRead, buffer.Length);
        Interlocked.Increment(ref _requests);
    }

    private string Existing(BlobDigest blob)
    {
        var path = _blobs.PathOf(blob);
        return File.Exists(path) ? path : throw new FileNotFoundException($"blob {blob} is not in {_blobs.Path}", path);
    }
}
