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

/// <summary>
/// Blobs stored under their sha256 in one directory (what <c>rafs build --blob-dir</c> writes), read through their
/// chunk tables: every chunk is decompressed and verified on the way.
/// </summary>
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
        return new StoredBlobSource(path);
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

/// <summary>
/// The uncompressed device layout of a stored blob, decoded chunk by chunk on demand. Each chunk is checked
/// against its sha256 before its bytes are returned; a bad chunk is an <see cref="ImageCorruptException"/>.
/// </summary>
public sealed class StoredBlobSource : IBlockSource
{
    private readonly SafeFileHandle _file;
    private readonly BlobChunkEntry[] _byDeviceOffset;
    private byte[] _chunk = [];
    private byte[] _storedBuffer = [];
    private int _cachedChunk = -1;

    public StoredBlobSource(string path)
    {
        Name = path;
        _file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            Table = BlobTable.Read(_file, path);
        }
        catch (InvalidDataException e)
        {
            _file.Dispose();
            throw new ImageCorruptException(e.Message);
        }
        _byDeviceOffset = Table.Chunks.OrderBy(c => c.DeviceOffset).ToArray();
        Length = Table.Footer.DeviceSize;
    }

    public string Name { get; }
    public long Length { get; }
    public BlobTable Table { get; }

    public void ReadExactly(long offset, Span<byte> buffer)
    {
        if (offset < 0 || offset > Length - buffer.Length)
            throw new ImageCorruptException($"{Name}: read of {buffer.Length} bytes at device offset {offset} is past the end of the blob's device layout ({Length} bytes)");
        while (buffer.Length > 0)
        {
            int index = Find(offset);
            if (index < 0)
            {
                // Not inside any chunk: padding between chunks reads as zeros.
                int next = ~index;
                long gapEnd = next < _byDeviceOffset.Length ? _byDeviceOffset[next].DeviceOffset : Length;
                int n = (int)Math.Min(buffer.Length, gapEnd - offset);
                buffer[..n].Clear();
                buffer = buffer[n..];
                offset += n;
                continue;
            }
            var entry = _byDeviceOffset[index];
            var chunk = Decode(index);
            int at = (int)(offset - entry.DeviceOffset);
            int take = Math.Min(buffer.Length, entry.Size - at);
            chunk.Slice(at, take).CopyTo(buffer);
            buffer = buffer[take..];
            offset += take;
        }
    }

    /// <summary>Index of the chunk covering <paramref name="offset"/>, or the complement of the next chunk's index.</summary>
    private int Find(long offset)
    {
        int lo = 0, hi = _byDeviceOffset.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var e = _byDeviceOffset[mid];
            if (offset < e.DeviceOffset) hi = mid - 1;
            else if (offset >= e.DeviceOffset + e.Size) lo = mid + 1;
            else return mid;
        }
        return ~lo;
    }

    private ReadOnlySpan<byte> Decode(int index)
    {
        var entry = _byDeviceOffset[index];
        if (_cachedChunk != index)
        {
            var stored = entry.StoredSize <= _storedBuffer.Length ? _storedBuffer : _storedBuffer = new byte[entry.StoredSize];
            if (_chunk.Length < entry.Size) _chunk = new byte[entry.Size];
            try
            {
                BlobTable.ReadExactly(_file, stored.AsSpan(0, entry.StoredSize), entry.StoredOffset, Name);
                BlobTable.DecodeChunk(entry, stored.AsSpan(0, entry.StoredSize), _chunk, Name);
            }
            catch (InvalidDataException e)
            {
                _cachedChunk = -1;
                throw new ImageCorruptException(e.Message);
            }
            _cachedChunk = index;
        }
        return _chunk.AsSpan(0, entry.Size);
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>
/// A blob's device served from the host's on-demand cache: reads fill missing chunks (fetched and verified)
/// first. The blob is shared and owned by the cache, so disposing this source leaves it open.
/// </summary>
public sealed class OnDemandBlobSource(OnDemandBlob blob) : IBlockSource
{
    public string Name => $"blob {blob.Digest}";
    public long Length => blob.DeviceSize;
    public void ReadExactly(long offset, Span<byte> buffer) => blob.Read(offset, buffer);
    public void Dispose() { }
}

/// <summary>Device slots resolved to on-demand blobs given in table order (a frontend that reads the image itself).</summary>
public sealed class OnDemandDeviceResolver(IReadOnlyList<OnDemandBlob> blobs) : IDeviceResolver
{
    public IBlockSource Open(int index, DeviceSlot slot)
    {
        if (index >= blobs.Count)
            throw new ImageCorruptException($"device slot {index + 1} ({slot.Tag}) has no blob; the image names more devices than it was mounted with");
        return new OnDemandBlobSource(blobs[index]);
    }
}
