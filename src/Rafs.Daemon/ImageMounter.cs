using Rafs.Format;
using Rafs.Interop;
using Rafs.Storage;

namespace Rafs.Daemon;

/// <summary>
/// File-backed EROFS mounts. The kernel matches extra devices to the device table by the order of the
/// <c>device=</c> options alone and never checks their identity, so this class resolves every slot by its
/// digest tag and verifies the blob before handing it over.
/// </summary>
public static class ImageMounter
{
    /// <summary>Mounts <paramref name="imagePath"/> read-only at <paramref name="mountPoint"/>.</summary>
    /// <param name="blobDirectory">Where blobs named by their sha256 live (for bootstrap + blob images).</param>
    /// <param name="cacheDirectory">Where blobs are materialised into device files (default <see cref="DeviceCache.DefaultPath"/>).</param>
    /// <param name="explicitDevices">Device files in table order, for images whose slots carry no digest (e.g. mkfs.erofs --blobdev).</param>
    public static IReadOnlyList<string> Mount(string imagePath, string mountPoint, string? blobDirectory, string? cacheDirectory = null,
        IReadOnlyList<string>? explicitDevices = null, Action<string>? log = null)
    {
        imagePath = Path.GetFullPath(imagePath);
        mountPoint = Path.GetFullPath(mountPoint);
        if (!Directory.Exists(mountPoint))
            throw new DirectoryNotFoundException($"mount point {mountPoint} does not exist: create it first");
        var devices = ResolveDevices(imagePath, blobDirectory, cacheDirectory, explicitDevices, log);
        foreach (var d in devices)
            if (d.Contains(',')) throw new ArgumentException($"device path {d} contains a comma, which mount options cannot carry");
        string? data = devices.Count == 0 ? null : string.Join(',', devices.Select(d => "device=" + d));
        Mounts.Mount(imagePath, mountPoint, "erofs", Mounts.MS_RDONLY, data);
        return devices;
    }

    public static void Unmount(string mountPoint)
    {
        mountPoint = Path.GetFullPath(mountPoint);
        if (!Mounts.IsMountPoint(mountPoint))
            throw new InvalidOperationException($"{mountPoint} is not a mount point");
        Mounts.Unmount(mountPoint);
    }

    /// <summary>Device paths in table order, each checked against its slot.</summary>
    public static List<string> ResolveDevices(string imagePath, string? blobDirectory, string? cacheDirectory,
        IReadOnlyList<string>? explicitDevices, Action<string>? log)
    {
        var slots = ReadDeviceTable(imagePath);
        var result = new List<string>(slots.Count);
        if (explicitDevices is { Count: > 0 })
        {
            if (explicitDevices.Count != slots.Count)
                throw new ArgumentException($"{imagePath} has {slots.Count} extra devices but {explicitDevices.Count} were given");
            for (int i = 0; i < slots.Count; i++)
            {
                var path = Path.GetFullPath(explicitDevices[i]);
                CheckSize(path, slots[i], i);
                if (BlobDigest.TryParse(slots[i].Tag, out var digest))
                    VerifyDigest(path, digest, log);
                result.Add(path);
            }
            return result;
        }
        if (slots.Count == 0) return result;
        if (blobDirectory is null)
            throw new ArgumentException($"{imagePath} needs {slots.Count} blob(s) ({string.Join(", ", slots.Select(s => s.Tag))}): pass --blob-dir");
        var blobs = new BlobDirectory(blobDirectory);
        var cache = new DeviceCache(cacheDirectory ?? DeviceCache.DefaultPath);
        for (int i = 0; i < slots.Count; i++)
        {
            if (!BlobDigest.TryParse(slots[i].Tag, out var digest))
                throw new InvalidDataException($"{imagePath}: device {i + 1} has tag '{slots[i].Tag}', not a blob digest; pass the device files with --device in table order");
            result.Add(cache.Ensure(blobs, digest, (long)slots[i].Blocks * ErofsFormat.BlockSize, log));
        }
        return result;
    }

    private static void VerifyDigest(string path, BlobDigest digest, Action<string>? log)
    {
        log?.Invoke($"verifying blob {digest.Hex}");
        var actual = BlobDigest.OfFile(path);
        if (actual != digest)
            throw new InvalidDataException($"blob {path} is corrupt or not the one the image names: sha256 {actual.Hex}, expected {digest.Hex}");
    }

    private static void CheckSize(string path, DeviceSlot slot, int index)
    {
        long need = (long)slot.Blocks * ErofsFormat.BlockSize;
        long have = new FileInfo(path).Length;
        if (have < need)
            throw new InvalidDataException($"device {index + 1} ({path}) has {have} bytes, the image needs {need}: it is truncated or the wrong file");
    }

    /// <summary>Reads only what mounting needs: the superblock (checksum verified) and the device table.</summary>
    public static List<DeviceSlot> ReadDeviceTable(string imagePath)
    {
        using var file = File.OpenHandle(imagePath, FileMode.Open, FileAccess.Read);
        var block0 = new byte[ErofsFormat.BlockSize];
        if (RandomAccess.Read(file, block0, 0) < block0.Length)
            throw new ImageCorruptException($"{imagePath}: shorter than one block, not an EROFS image");
        var sb = SuperBlock.Read(block0.AsSpan(ErofsFormat.SuperOffset));
        if (sb.Magic != ErofsFormat.SuperMagic)
            throw new ImageCorruptException($"{imagePath}: no EROFS superblock (magic 0x{sb.Magic:x8})");
        if ((sb.FeatureCompat & ErofsFormat.FeatureCompatSbChecksum) != 0 &&
            SuperBlock.ComputeChecksum(block0.AsSpan(ErofsFormat.SuperOffset, SuperBlock.ChecksumLength)) != sb.Checksum)
            throw new ImageCorruptException($"{imagePath}: superblock checksum mismatch; the image is damaged");
        var slots = new List<DeviceSlot>(sb.ExtraDevices);
        var slot = new byte[DeviceSlot.Size];
        long offset = (long)sb.DeviceTableSlotOffset * DeviceSlot.Size;
        for (int i = 0; i < sb.ExtraDevices; i++, offset += DeviceSlot.Size)
        {
            if (RandomAccess.Read(file, slot, offset) < slot.Length)
                throw new ImageCorruptException($"{imagePath}: device table slot {i} at offset {offset} is past the end of the image");
            slots.Add(DeviceSlot.Read(slot));
        }
        return slots;
    }
}
