namespace Rafs.Storage;

/// <summary>
/// Materialised blobs: each blob's uncompressed device layout, the file EROFS reads, named by the blob digest.
/// A file is only ever renamed into place complete and verified, so presence means usable. One copy per blob
/// serves every image on the host that uses it.
/// </summary>
public sealed class DeviceCache(string path)
{
    public const string DefaultPath = "/var/lib/rafs/cache";

    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public string PathOf(BlobDigest digest) => System.IO.Path.Combine(Path, digest.Hex + ".device");

    /// <summary>Returns the device file for a blob, materialising it from <paramref name="blobs"/> when absent.</summary>
    public string Ensure(BlobDirectory blobs, BlobDigest digest, long expectedDeviceSize, Action<string>? log = null)
    {
        var device = PathOf(digest);
        if (!File.Exists(device))
        {
            var stored = blobs.PathOf(digest);
            if (!File.Exists(stored))
                throw new FileNotFoundException($"blob {digest} is missing from {blobs.Path}: copy it there or pass the right --blob-dir", stored);
            Directory.CreateDirectory(Path);
            log?.Invoke($"materializing blob {digest.Hex} into {Path}");
            BlobMaterializer.Materialize(stored, device, digest);
        }
        long size = new FileInfo(device).Length;
        if (size != expectedDeviceSize)
            throw new InvalidDataException($"{device} has {size} bytes, the image's device table says {expectedDeviceSize}: the blob does not belong to this image");
        return device;
    }
}
