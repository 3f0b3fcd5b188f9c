using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace Rafs.Storage.Remote;

/// <summary>An image somewhere: its verified Rafs manifest, and a backend serving its blobs by range.</summary>
public interface IImageSource : IDisposable
{
    ImageReference Reference { get; }
    IBlobBackend Blobs { get; }
    IBackendCounters Counters { get; }
    RafsManifest GetManifest();
}

public static class ImageSources
{
    public static IImageSource Open(string reference, RemoteOptions options) => Open(ImageReference.Parse(reference), options);

    public static IImageSource Open(ImageReference reference, RemoteOptions options) => reference.Kind switch
    {
        ReferenceKind.Registry => new RegistrySource(reference, options),
        ReferenceKind.Http => new HttpLayoutSource(reference, options),
        _ => new LayoutDirectorySource(reference),
    };

    /// <summary>
    /// The bootstrap, fetched whole into the cache directory and verified by digest before anything mounts it;
    /// an earlier verified copy (named by its digest) is used again without fetching.
    /// </summary>
    public static string FetchBootstrap(IImageSource source, RafsManifest manifest, string cacheDirectory)
    {
        var digest = manifest.Bootstrap.BlobDigest;
        Directory.CreateDirectory(cacheDirectory);
        var path = Path.Combine(Path.GetFullPath(cacheDirectory), digest.Hex + ".bootstrap");
        if (File.Exists(path) && BlobDigest.OfFile(path) == digest) return path;
        long length = manifest.Bootstrap.Size;
        if (length <= 0 || length > 1L << 32) throw new InvalidDataException($"bootstrap {digest}: size {length} in the manifest is not plausible");
        var temporary = path + $".tmp-{Environment.ProcessId}";
        try
        {
            using (var output = new FileStream(temporary, FileMode.Create, FileAccess.Write))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                var buffer = new byte[4 << 20];
                for (long offset = 0; offset < length; offset += buffer.Length)
                {
                    var piece = buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset));
                    source.Blobs.Read(digest, offset, piece);
                    hash.AppendData(piece);
                    output.Write(piece);
                }
                var actual = BlobDigest.FromHash(hash.GetHashAndReset());
                if (actual != digest)
                    throw new InvalidDataException($"bootstrap from {source.Reference} is corrupt: its sha256 is {actual.Hex}, the manifest says {digest.Hex}");
            }
            File.Move(temporary, path, overwrite: true);
            return path;
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}

/// <summary>Blob lengths from the manifest, so opening a blob costs no extra request.</summary>
internal abstract class ManifestSizedSource : IBlobBackend
{
    private readonly Dictionary<BlobDigest, long> _sizes = [];

    public abstract string Name { get; }

    protected void Learn(RafsManifest manifest)
    {
        lock (_sizes)
            foreach (var d in manifest.Oci.Layers ?? []) _sizes[d.BlobDigest] = d.Size;
    }

    public long GetLength(BlobDigest blob)
    {
        lock (_sizes) if (_sizes.TryGetValue(blob, out var size)) return size;
        return FetchLength(blob);
    }

    protected abstract long FetchLength(BlobDigest blob);
    public abstract void Read(BlobDigest blob, long offset, Span<byte> buffer);
}

/// <summary>A source reached over HTTP: one transport (retries, bounded concurrency, counters) per image.</summary>
internal abstract class HttpSource(ImageReference reference, RemoteOptions options) : ManifestSizedSource, IImageSource
{
    protected HttpTransport Transport { get; } = new(options);

    public ImageReference Reference { get; } = reference;
    public IBlobBackend Blobs => this;
    public IBackendCounters Counters => Transport;
    public abstract RafsManifest GetManifest();
    public void Dispose() => Transport.Dispose();
}

internal sealed class RegistrySource : HttpSource
{
    private readonly RegistryClient _client;

    public RegistrySource(ImageReference reference, RemoteOptions options) : base(reference, options) =>
        _client = new RegistryClient(reference, options, Transport);

    public override string Name => Reference.ToString();

    public override RafsManifest GetManifest()
    {
        var manifest = _client.GetManifest();
        Learn(manifest);
        return manifest;
    }

    protected override long FetchLength(BlobDigest blob) => _client.GetBlobLength(blob);
    public override void Read(BlobDigest blob, long offset, Span<byte> buffer) => _client.ReadBlob(blob, offset, buffer);
}

/// <summary>An OCI image layout served over HTTP(S) by any static server that honours Range (nginx, a CDN, S3 website).</summary>
internal sealed class HttpLayoutSource(ImageReference reference, RemoteOptions options) : HttpSource(reference, options)
{
    private readonly Uri _base = new(reference.Location + "/");

    public override string Name => Reference.Location;

    private Uri BlobUri(BlobDigest d) => new(_base, $"blobs/sha256/{d.Hex}");

    private byte[] GetSmall(Uri uri, string what)
    {
        using var response = Transport.Send(() => new HttpRequestMessage(HttpMethod.Get, uri), what);
        if (response.StatusCode == HttpStatusCode.NotFound) throw new FileNotFoundException($"{what}: {uri} not found (404)");
        if (!response.IsSuccessStatusCode) throw new IOException($"{what}: {uri} answered {(int)response.StatusCode}");
        return Transport.ReadSmallBody(response, RafsManifest.MaxManifestBytes, what);
    }

    public override RafsManifest GetManifest()
    {
        var where = $"{_base}index.json";
        var manifest = RafsManifest.FromLayout(GetSmall(new Uri(_base, "index.json"), where), Reference.Tag,
            digest => GetSmall(BlobUri(digest), $"manifest {digest} from {_base}"), where);
        Learn(manifest);
        return manifest;
    }

    protected override long FetchLength(BlobDigest blob)
    {
        using var response = Transport.Send(() => new HttpRequestMessage(HttpMethod.Head, BlobUri(blob)), $"blob {blob}");
        if (!response.IsSuccessStatusCode) throw new IOException($"blob {blob}: {BlobUri(blob)} answered {(int)response.StatusCode}");
        return response.Content.Headers.ContentLength ?? throw new InvalidDataException($"blob {blob}: no length from {_base}");
    }

    public override void Read(BlobDigest blob, long offset, Span<byte> buffer)
    {
        var uri = BlobUri(blob);
        Transport.GetRange((o, c) => Transport.Send(() => HttpTransport.WithRange(new HttpRequestMessage(HttpMethod.Get, uri), o, c), $"blob {blob}"), offset, buffer, $"blob {blob} bytes {offset}+{buffer.Length} from {_base}");
    }

}

/// <summary>A local OCI image layout directory (what 'rafs push IMAGE DIR' writes).</summary>
internal sealed class LayoutDirectorySource(ImageReference reference) : IImageSource, IBlobBackend, IBackendCounters
{
    private long _requests, _bytes;

    public ImageReference Reference { get; } = reference;
    public IBlobBackend Blobs => this;
    public IBackendCounters Counters => this;
    public string Name => Reference.Location;
    public long Requests => Interlocked.Read(ref _requests);
    public long BytesRead => Interlocked.Read(ref _bytes);
    public long Retries => 0;

    private string BlobPath(BlobDigest d) => Path.Combine(Reference.Location, "blobs", "sha256", d.Hex);

    public RafsManifest GetManifest()
    {
        var where = Path.Combine(Reference.Location, "index.json");
        if (!File.Exists(where)) throw new FileNotFoundException($"{Reference.Location} is not an OCI image layout (no index.json)", where);
        return RafsManifest.FromLayout(File.ReadAllBytes(where), Reference.Tag, digest => File.ReadAllBytes(BlobPath(digest)), where);
    }

    public long GetLength(BlobDigest blob) =>
        File.Exists(BlobPath(blob)) ? new FileInfo(BlobPath(blob)).Length : throw new FileNotFoundException($"blob {blob} is not in {Reference.Location}", BlobPath(blob));

    public void Read(BlobDigest blob, long offset, Span<byte> buffer)
    {
        using var file = File.OpenHandle(BlobPath(blob));
        BlobTable.ReadExactly(file, buffer, offset, BlobPath(blob));
        Interlocked.Increment(ref _requests);
        Interlocked.Add(ref _bytes, buffer.Length);
    }

    public void Dispose() { }
}
