using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rafs.Storage.Remote;

/// <summary>
/// How a Rafs image travels as an OCI artifact (docs/format.md, "Distribution"): an OCI image manifest whose layers
/// are the data blobs in device-table order followed by the bootstrap, each a plain OCI descriptor with Rafs
/// annotations. The same manifest is used on a registry, in an OCI image layout directory and behind an HTTP URL.
/// </summary>
public static class RafsMediaTypes
{
    public const string Manifest = "application/vnd.oci.image.manifest.v1+json";
    public const string Index = "application/vnd.oci.image.index.v1+json";
    public const string ArtifactType = "application/vnd.rafs.image.v1";
    public const string Config = "application/vnd.rafs.config.v1+json";
    public const string Bootstrap = "application/vnd.rafs.bootstrap.v1.erofs";
    public const string Blob = "application/vnd.rafs.blob.v1";

    public const string AnnotationDeviceSize = "io.rafs.blob.device-size";
    public const string AnnotationTableDigest = "io.rafs.blob.table-digest";
    public const string AnnotationDeviceIndex = "io.rafs.blob.device-index";
    public const string AnnotationRefName = "org.opencontainers.image.ref.name";
}

public sealed class OciDescriptor
{
    [JsonPropertyName("mediaType")] public string MediaType { get; set; } = "";
    [JsonPropertyName("digest")] public string Digest { get; set; } = "";
    [JsonPropertyName("size")] public long Size { get; set; }
    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Annotations { get; set; }

    [JsonIgnore]
    public BlobDigest BlobDigest => Storage.BlobDigest.TryParse(Digest, out var d) && Digest.StartsWith("sha256:", StringComparison.Ordinal)
        ? d : throw new InvalidDataException($"descriptor digest '{Digest}' is not a sha256 digest");

    public string? Annotation(string key) => Annotations is not null && Annotations.TryGetValue(key, out var v) ? v : null;
}

public sealed class OciManifest
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; set; } = 2;
    [JsonPropertyName("mediaType")] public string MediaType { get; set; } = RafsMediaTypes.Manifest;
    [JsonPropertyName("artifactType")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ArtifactType { get; set; }
    /// <summary>Null in an index (which has manifests instead).</summary>
    [JsonPropertyName("config")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public OciDescriptor? Config { get; set; } = new();
    [JsonPropertyName("layers")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<OciDescriptor>? Layers { get; set; } = [];
    [JsonPropertyName("manifests")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<OciDescriptor>? Manifests { get; set; }
    [JsonPropertyName("annotations")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Annotations { get; set; }
}

/// <summary>The small config object: what a reader needs to know before fetching anything else.</summary>
public sealed class RafsImageConfig
{
    [JsonPropertyName("rafsVersion")] public int RafsVersion { get; set; } = 1;
    [JsonPropertyName("bootstrap")] public string Bootstrap { get; set; } = "";
    [JsonPropertyName("blobs")] public List<string> Blobs { get; set; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(OciManifest))]
[JsonSerializable(typeof(RafsImageConfig))]
[JsonSerializable(typeof(DockerConfig))]
[JsonSerializable(typeof(TokenResponse))]
internal sealed partial class RemoteJson : JsonSerializerContext;

/// <summary>A verified Rafs manifest: the bootstrap descriptor and the blob descriptors in device-table order.</summary>
public sealed record RafsManifest(OciManifest Oci, BlobDigest ManifestDigest, OciDescriptor Bootstrap, IReadOnlyList<OciDescriptor> Blobs)
{
    /// <summary>Largest manifest or index accepted (OCI registries cap manifests at 4 MiB too).</summary>
    public const int MaxManifestBytes = 4 << 20;

    public static byte[] Serialize(OciManifest manifest) => JsonSerializer.SerializeToUtf8Bytes(manifest, RemoteJson.Default.OciManifest);

    public static OciManifest ParseOci(ReadOnlySpan<byte> json, string where)
    {
        try
        {
            return JsonSerializer.Deserialize(json, RemoteJson.Default.OciManifest)
                   ?? throw new InvalidDataException($"{where}: the manifest is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{where}: the manifest is not valid JSON ({e.Message})");
        }
    }

    /// <summary>Checks that an OCI manifest is a Rafs image: one bootstrap layer last, blob layers before it.</summary>
    public static RafsManifest FromOci(OciManifest oci, BlobDigest digest, string where)
    {
        if (oci.SchemaVersion != 2) throw new InvalidDataException($"{where}: schemaVersion {oci.SchemaVersion}, expected 2");
        if (oci.Config is null || oci.Layers is null || oci.Layers.Count == 0 || oci.Layers[^1].MediaType != RafsMediaTypes.Bootstrap)
            throw new InvalidDataException($"{where}: not a Rafs image (the last layer must be {RafsMediaTypes.Bootstrap}); " +
                                           "push it with 'rafs push' or convert it first");
        var blobs = oci.Layers.Take(oci.Layers.Count - 1).ToList();
        foreach (var b in blobs)
        {
            if (b.MediaType != RafsMediaTypes.Blob)
                throw new InvalidDataException($"{where}: layer {b.Digest} has media type {b.MediaType}, expected {RafsMediaTypes.Blob}");
            _ = b.BlobDigest;
        }
        _ = oci.Layers[^1].BlobDigest;
        return new RafsManifest(oci, digest, oci.Layers[^1], blobs);
    }

    /// <summary>Parses manifest bytes fetched by digest, after checking they hash to <paramref name="expected"/> (when one is known).</summary>
    public static RafsManifest FromBytes(byte[] body, BlobDigest? expected, string where)
    {
        var digest = BlobDigest.Of(body);
        if (expected is { } want && digest != want)
            throw new InvalidDataException($"{where}: the manifest's bytes hash to {digest}, not {want}");
        return FromOci(ParseOci(body, where), digest, where);
    }

    /// <summary>The manifest an OCI image layout's index.json tags <paramref name="tag"/>, read by digest and verified.</summary>
    public static RafsManifest FromLayout(byte[] indexJson, string? tag, Func<BlobDigest, byte[]> readBlob, string where)
    {
        var descriptor = OciIndex.Select(ParseOci(indexJson, where), tag, where);
        return FromBytes(readBlob(descriptor.BlobDigest), descriptor.BlobDigest, $"{where}: manifest {descriptor.Digest}");
    }

    /// <summary>Describes a bootstrap and its blobs (in device-table order) as a manifest plus its config.</summary>
    public static (OciManifest Manifest, byte[] Config) Describe(OciDescriptor bootstrap, IReadOnlyList<OciDescriptor> blobs)
    {
        var config = JsonSerializer.SerializeToUtf8Bytes(new RafsImageConfig
        {
            Bootstrap = bootstrap.Digest,
            Blobs = blobs.Select(b => b.Digest).ToList(),
        }, RemoteJson.Default.RafsImageConfig);
        var manifest = new OciManifest
        {
            ArtifactType = RafsMediaTypes.ArtifactType,
            Config = new OciDescriptor { MediaType = RafsMediaTypes.Config, Digest = BlobDigest.Of(config).ToString(), Size = config.Length },
            Layers = [.. blobs, bootstrap],
        };
        return (manifest, config);
    }

    /// <summary>The blob's chunk-table digest from the manifest, when the pusher recorded it.</summary>
    public static byte[]? TableDigest(OciDescriptor blob) =>
        blob.Annotation(RafsMediaTypes.AnnotationTableDigest) is { } text && BlobDigest.TryParse(text, out var d)
            ? Convert.FromHexString(d.Hex) : null;
}

/// <summary>An OCI index (index.json of an image layout, or a registry index); only what Rafs reads.</summary>
public static class OciIndex
{
    /// <summary>Picks the manifest tagged <paramref name="tag"/> (org.opencontainers.image.ref.name), or the only one.</summary>
    public static OciDescriptor Select(OciManifest index, string? tag, string where)
    {
        var manifests = index.Manifests ?? throw new InvalidDataException($"{where}: not an OCI index (no manifests)");
        if (tag is not null)
            return manifests.FirstOrDefault(m => m.Annotation(RafsMediaTypes.AnnotationRefName) == tag)
                   ?? throw new InvalidDataException($"{where}: no manifest tagged '{tag}' (tags: {string.Join(", ", manifests.Select(m => m.Annotation(RafsMediaTypes.AnnotationRefName) ?? "-"))})");
        return manifests.Count == 1 ? manifests[0]
            : throw new InvalidDataException($"{where}: {manifests.Count} manifests; name one with :TAG");
    }
}

public sealed class DockerConfig
{
    [JsonPropertyName("auths")] public Dictionary<string, DockerAuth>? Auths { get; set; }
}

public sealed class DockerAuth
{
    [JsonPropertyName("auth")] public string? Auth { get; set; }
    [JsonPropertyName("username")] public string? Username { get; set; }
    [JsonPropertyName("password")] public string? Password { get; set; }
    [JsonPropertyName("identitytoken")] public string? IdentityToken { get; set; }
}

public sealed class TokenResponse
{
    [JsonPropertyName("token")] public string? Token { get; set; }
    [JsonPropertyName("access_token")] public string? AccessToken { get; set; }
    [JsonPropertyName("expires_in")] public int? ExpiresIn { get; set; }
}

/// <summary>Registry credentials from a docker config file (~/.docker/config.json or $DOCKER_CONFIG/config.json).</summary>
public static class DockerCredentials
{
    public static string DefaultPath =>
        Path.Combine(Environment.GetEnvironmentVariable("DOCKER_CONFIG")
                     ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".docker"), "config.json");

    /// <summary>user:password for the registry host, or null; a config that cannot be read is an error naming the file.</summary>
    public static (string User, string Password)? Find(string? configPath, string host)
    {
        configPath ??= DefaultPath;
        if (!File.Exists(configPath)) return null;
        DockerConfig? config;
        try { config = JsonSerializer.Deserialize(File.ReadAllBytes(configPath), RemoteJson.Default.DockerConfig); }
        catch (JsonException e) { throw new InvalidDataException($"{configPath}: not a valid docker config ({e.Message})"); }
        if (config?.Auths is null) return null;
        foreach (var (key, auth) in config.Auths)
        {
            var keyHost = key.Replace("https://", "").Replace("http://", "").TrimEnd('/');
            if (keyHost.EndsWith("/v1", StringComparison.Ordinal) || keyHost.EndsWith("/v2", StringComparison.Ordinal)) keyHost = keyHost[..^3];
            if (!string.Equals(keyHost, host, StringComparison.OrdinalIgnoreCase)) continue;
            if (auth.Username is { } u && auth.Password is { } p) return (u, p);
            if (auth.Auth is { } encoded)
            {
                var text = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
                int colon = text.IndexOf(':');
                if (colon > 0) return (text[..colon], text[(colon + 1)..]);
            }
        }
        return null;
    }
}
