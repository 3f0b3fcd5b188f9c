using System.Text.Json;
using Rafs.Storage;

namespace Rafs.Build.Layers;

/// <summary>Reads an OCI image layout directory (index.json → manifest → layers), as skopeo or docker save write it.</summary>
public static class OciLayout
{
    private const string ImageIndexType = "application/vnd.oci.image.index.v1+json";
    private const string DockerListType = "application/vnd.docker.distribution.manifest.list.v2+json";
    private const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    /// <summary>Layer files of the image named by <paramref name="reference"/> ("DIR" or "DIR:TAG"), lowest first, each verified by digest.</summary>
    public static List<string> LayerPaths(string reference)
    {
        var (dir, tag) = SplitReference(reference);
        var indexPath = Path.Combine(dir, "index.json");
        if (!File.Exists(indexPath)) throw new FileNotFoundException($"{dir} is not an OCI image layout: index.json is missing", indexPath);
        using var index = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        var manifests = index.RootElement.GetProperty("manifests").EnumerateArray().ToList();
        var chosen = tag is null
            ? manifests.Count == 1 ? manifests[0] : throw new ArgumentException($"{dir} holds {manifests.Count} images: name one as {dir}:TAG ({string.Join(", ", manifests.Select(RefName))})")
            : manifests.FirstOrDefault(m => RefName(m) == tag) is { ValueKind: JsonValueKind.Object } found ? found
            : throw new ArgumentException($"{dir} has no image tagged '{tag}' (it has: {string.Join(", ", manifests.Select(RefName))})");
        var manifest = ReadBlobJson(dir, chosen);
        while (manifest.RootElement.TryGetProperty("mediaType", out var mt) && mt.GetString() is ImageIndexType or DockerListType)
        {
            var inner = manifest.RootElement.GetProperty("manifests").EnumerateArray().First();
            manifest = ReadBlobJson(dir, inner);
        }
        var layers = new List<string>();
        foreach (var layer in manifest.RootElement.GetProperty("layers").EnumerateArray())
            layers.Add(VerifiedBlob(dir, layer.GetProperty("digest").GetString()!));
        return layers;
    }

    private static (string Dir, string? Tag) SplitReference(string reference)
    {
        int colon = reference.LastIndexOf(':');
        if (colon > 0 && !reference[(colon + 1)..].Contains('/') && !Directory.Exists(reference))
            return (reference[..colon], reference[(colon + 1)..]);
        return (reference, null);
    }

    private static string RefName(JsonElement descriptor) =>
        descriptor.TryGetProperty("annotations", out var a) && a.TryGetProperty(RefNameAnnotation, out var n) ? n.GetString() ?? "?" : "(untagged)";

    private static JsonDocument ReadBlobJson(string dir, JsonElement descriptor) =>
        JsonDocument.Parse(File.ReadAllBytes(VerifiedBlob(dir, descriptor.GetProperty("digest").GetString()!)));

    private static string VerifiedBlob(string dir, string digestText)
    {
        var digest = BlobDigest.Parse(digestText);
        var path = Path.Combine(dir, "blobs", "sha256", digest.Hex);
        if (!File.Exists(path)) throw new FileNotFoundException($"{dir}: blob {digest} is missing", path);
        var actual = BlobDigest.OfFile(path);
        if (actual != digest) throw new InvalidDataException($"{path} is corrupt: sha256 {actual.Hex}, expected {digest.Hex}");
        return path;
    }
}
