using Rafs.Format;
using Rafs.Image;
using Rafs.Storage;

namespace Rafs.Build;

/// <summary>
/// The blobs an image may point into while it is built: chunk-dictionary blobs from earlier images first, then the
/// build's own. Ids are provisional; <see cref="Finish"/> keeps only blobs some chunk index uses and renumbers the
/// indexes to the final, dense device table.
/// </summary>
internal sealed class DeviceTable
{
    private readonly List<DeviceSlot?> _slots = [];

    /// <summary>Reserves the next device id; its slot is set once the blob is finished.</summary>
    public ushort Reserve()
    {
        _slots.Add(null);
        return checked((ushort)_slots.Count);
    }

    public void Set(ushort id, DeviceSlot slot) => _slots[id - 1] = slot;

    /// <summary>
    /// Loads the chunks of earlier images' blobs into <paramref name="dictionary"/>, so identical chunks are
    /// referenced there instead of being stored again.
    /// </summary>
    public void LoadChunkDictionary(IEnumerable<string> bootstraps, BlobDirectory blobs, ChunkDictionary dictionary)
    {
        foreach (var bootstrap in bootstraps)
        {
            using var image = ErofsImage.Open(bootstrap);
            foreach (var slot in image.Devices)
            {
                if (!BlobDigest.TryParse(slot.Tag, out var digest))
                    throw new InvalidDataException($"{bootstrap}: device tag '{slot.Tag}' is not a blob digest; it cannot serve as a chunk dictionary");
                if (_slots.Any(s => s?.Tag == slot.Tag)) continue;
                var path = blobs.PathOf(digest);
                if (!File.Exists(path))
                    throw new FileNotFoundException($"chunk dictionary {bootstrap} needs blob {digest}, which is not in {blobs.Path}", path);
                using var file = File.OpenHandle(path);
                var table = BlobTable.Read(file, path);
                ushort id = Reserve();
                Set(id, slot);
                foreach (var chunk in table.Chunks)
                    dictionary.Add(chunk.Digest, chunk.Size, new ChunkIndex(0, id, checked((uint)(chunk.DeviceOffset >> ErofsFormat.BlockSizeBits))));
            }
        }
    }

    /// <summary>Drops unused and empty devices, renumbers every chunk index, and returns the device table in order.</summary>
    public List<DeviceSlot> Finish(IEnumerable<BuildNode> inodes)
    {
        var used = new bool[_slots.Count + 1];
        var chunked = inodes.Select(n => n.Data).OfType<ChunkedData>().ToList();
        foreach (var data in chunked)
            foreach (var index in data.Indexes)
                if (!index.IsHole) used[index.DeviceId] = true;
        var final = new ushort[_slots.Count + 1];
        var result = new List<DeviceSlot>();
        for (int id = 1; id <= _slots.Count; id++)
        {
            if (!used[id]) continue;
            result.Add(_slots[id - 1] ?? throw new InvalidOperationException($"device {id} is used but has no blob"));
            final[id] = (ushort)result.Count;
        }
        foreach (var data in chunked)
            for (int c = 0; c < data.Indexes.Length; c++)
                if (!data.Indexes[c].IsHole)
                    data.Indexes[c] = data.Indexes[c] with { DeviceId = final[data.Indexes[c].DeviceId] };
        return result;
    }
}
