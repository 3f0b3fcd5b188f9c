using System.Security.Cryptography;
using System.Text.Json;

namespace Rafs.Storage.Remote;

public sealed record PushResult(string Reference, BlobDigest ManifestDigest, int Uploaded, int Skipped, long UploadedBytes);

/// <summary>
/// Publishes a bootstrap and its blobs (in device-table order) as a Rafs manifest: to a registry (blobs the
/// registry already has are skipped) or into an OCI image layout directory, which any static HTTP server can serve.
/// </summary>
public static class ImagePusher
{
    public static PushResult Push(string bootstrap, IReadOnlyList<(BlobDigest Digest, string Path)> blobs, ImageReference target,
        RemoteOptions options, Action<string>? progress = null)
    {
        var blobDescriptors = new List<OciDescriptor>();
        for (int i = 0; i < blobs.Count; i++)
        {
            var (digest, path) = blobs[i];
            using var file = File.OpenHandle(path);
            var table = BlobTable.Read(file, path);
            blobDescriptors.Add(new OciDescriptor
            {
                MediaType = RafsMediaTypes.Blob,
                Digest = digest.ToString(),
                Size = RandomAccess.GetLength(file),
                Annotations = new()
                {
                    [RafsMediaTypes.AnnotationDeviceIndex] = (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
                    [RafsMediaTypes.AnnotationDeviceSize] = table.Footer.DeviceSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    [RafsMediaTypes.AnnotationTableDigest] = "sha256:" + Convert.ToHexStringLower(table.Footer.TableDigest),
                },
            });
        }
        var bootstrapDescriptor = new OciDescriptor
        {
            MediaType = RafsMediaTypes.Bootstrap,
            Digest = BlobDigest.OfFile(bootstrap).ToString(),
            Size = new FileInfo(bootstrap).Length,
        };
        var (manifest, config) = RafsManifest.Describe(bootstrapDescriptor, blobDescriptors);
        var manifestBytes = RafsManifest.Serialize(manifest);
        var manifestDigest = BlobDigest.Of(manifestBytes);
        var files = blobs.Select(b => (b.Digest, b.Path)).Append((bootstrapDescriptor.BlobDigest, bootstrap)).ToList();

        return target.Kind switch
        {
            ReferenceKind.Registry => ToRegistry(target, options, files, config, manifest, manifestBytes, manifestDigest, progress),
            ReferenceKind.Directory => ToLayout(target, files, config, manifest, manifestBytes, manifestDigest, progress),
            _ => throw new NotSupportedException($"cannot push to {target}: HTTP URLs are read-only; push to a directory and serve it"),
        };
    }

    private static PushResult ToRegistry(ImageReference target, RemoteOptions options, List<(BlobDigest Digest, string Path)> files,
        byte[] config, OciManifest manifest, byte[] manifestBytes, BlobDigest manifestDigest, Action<string>? progress)
    {
        using var transport = new HttpTransport(options);
        var client = new RegistryClient(target, options, transport);
        int uploaded = 0, skipped = 0;
        long bytes = 0;
        var configPath = Path.Combine(Path.GetTempPath(), $"rafs-config-{Environment.ProcessId}-{Guid.NewGuid():N}");
        File.WriteAllBytes(configPath, config);
        try
        {
            foreach (var (digest, path) in files.Append((manifest.Config!.BlobDigest, configPath)))
            {
                if (client.HasBlob(digest))
                {
                    skipped++;
                    progress?.Invoke($"{digest}: already on the registry");
                    continue;
                }
                long size = new FileInfo(path).Length;
                progress?.Invoke($"{digest}: uploading {size} bytes");
                client.UploadBlob(digest, path);
                uploaded++;
                bytes += size;
            }
        }
        finally
        {
            File.Delete(configPath);
        }
        client.PutManifest(target.Digest ?? target.Tag ?? "latest", manifestBytes);
        if (target.Digest is not null && target.Digest != manifestDigest.ToString())
            throw new InvalidDataException($"the manifest's digest is {manifestDigest}, not the {target.Digest} asked for");
        return new PushResult($"{target.Location}/{target.Repository}@{manifestDigest}", manifestDigest, uploaded, skipped, bytes);
    }

    private static PushResult ToLayout(ImageReference target, List<(BlobDigest Digest, string Path)> files, byte[] config,
        OciManifest manifest, byte[] manifestBytes, BlobDigest manifestDigest, Action<string>? progress)
    {
        var blobsDir = Path.Combine(target.Location, "blobs", "sha256");
        Directory.CreateDirectory(blobsDir);
        int uploaded = 0, skipped = 0;
        long bytes = 0;
        void Put(BlobDigest digest, Action<string> write, long size)
        {
            var final = Path.Combine(blobsDir, digest.Hex);
            if (File.Exists(final)) { skipped++; return; }
            var temporary = final + $".tmp-{Environment.ProcessId}";
            write(temporary);
            File.Move(temporary, final);
            uploaded++;
            bytes += size;
            progress?.Invoke($"{digest}: {size} bytes written");
        }
        foreach (var (digest, path) in files) Put(digest, t => File.Copy(path, t, overwrite: true), new FileInfo(path).Length);
        Put(manifest.Config!.BlobDigest, t => File.WriteAllBytes(t, config), config.Length);
        Put(manifestDigest, t => File.WriteAllBytes(t, manifestBytes), manifestBytes.Length);

        File.WriteAllText(Path.Combine(target.Location, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        var indexPath = Path.Combine(target.Location, "index.json");
        var index = File.Exists(indexPath) ? RafsManifest.ParseOci(File.ReadAllBytes(indexPath), indexPath) : new OciManifest { MediaType = RafsMediaTypes.Index, Config = null, Layers = null };
        index.Config = null;   // an index has manifests, not config and layers
        index.Layers = null;
        index.MediaType = RafsMediaTypes.Index;
        index.Manifests ??= [];
        var tag = target.Tag ?? "latest";
        index.Manifests.RemoveAll(m => m.Annotation(RafsMediaTypes.AnnotationRefName) == tag);
        index.Manifests.Add(new OciDescriptor
        {
            MediaType = RafsMediaTypes.Manifest,
            Digest = manifestDigest.ToString(),
            Size = manifestBytes.Length,
            Annotations = new() { [RafsMediaTypes.AnnotationRefName] = tag },
        });
        var temporaryIndex = indexPath + $".tmp-{Environment.ProcessId}";
        File.WriteAllBytes(temporaryIndex, JsonSerializer.SerializeToUtf8Bytes(index, RemoteJson.Default.OciManifest));
        File.Move(temporaryIndex, indexPath, overwrite: true);
        return new PushResult($"{target.Location}:{tag}", manifestDigest, uploaded, skipped, bytes);
    }
}
