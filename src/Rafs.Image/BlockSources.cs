using Microsoft.Win32.SafeHandles;
using Rafs.Format;
using Rafs.Storage;

namespace Rafs.Image;

/// <summary>Random access to the bytes of an image or a device. Reads past the end are corruption.</summary>
public interface IBlockSource : IDisposable
{
    string Name { get; }
    long Length { get; }
    void ReadExactly(long offset, Span<byte> buffer);
}

public sealed class FileBlockSource : IBlockSource
{
    private readonly SafeFileHandle _file;

    public FileBlockSource(string path)
    {
        Name = path;
        _file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Length = RandomAccess.GetLength(_file);
    }

    public string Name { get; }
    public long Length { get; }

    public void ReadExactly(long offset, Span<byte> buffer)
    {
        if (offset < 0 || offset > Length - buffer.Length)
            throw new ImageCorruptException($"{Name}: read of {buffer.Length} bytes at offset {offset} is past the end ({Length} bytes)");
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(_file, buffer, offset);
            if (n <= 0) throw new ImageCorruptException($"{Name}: unexpected end of file at offset {offset}");
            buffer = buffer[n..];
            offset += n;
        }
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>Finds the data source of extra device <c>index</c> (0-based slot index) of an image.</summary>
public interface IDeviceResolver
{
    IBlockSource Open(int index, DeviceSlot slot);
}

/// <summary>Blobs stored under their sha256 in one directory (what <c>rafs build --blob-dir</c> writes).</summary>
public sealed class BlobDirectoryResolver(string directory) : IDeviceResolver
{
    public BlobDirectory Directory { get; } = new(directory);

    public IBlockSource Open(int index, DeviceSlot slot)
    {
        if (!BlobDigest.TryParse(slot.Tag, out var digest))
            throw new ImageUnsupportedException($"device {index + 1} has tag '{slot.Tag}', not a blob digest: pass the device files explicitly");
        var path = Directory.PathOf(digest);
        if (!File.Exists(path))
            throw new FileNotFoundException($"blob {digest} (device {index + 1}) is not in {Directory.Path}", path);
        return new FileBlockSource(path);
    }
}

/// <summary>Device files given in table order (for images whose slots carry no digest, like mkfs.erofs --blobdev).</summary>
public sealed class ExplicitDeviceResolver(IReadOnlyList<string> paths) : IDeviceResolver
{
    public IBlockSource Open(int index, DeviceSlot slot)
    {
        if (index >= paths.Count)
            throw new ArgumentException($"the image has more extra devices than the {paths.Count} given");
        return new FileBlockSource(paths[index]);
    }
}
