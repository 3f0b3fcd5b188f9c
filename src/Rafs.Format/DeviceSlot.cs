using System.Buffers.Binary;
using System.Text;

namespace Rafs.Format;

/// <summary>struct erofs_deviceslot (128 bytes): one extra device (a Rafs blob).</summary>
public readonly record struct DeviceSlot(string Tag, uint Blocks, uint MappedBlockAddress)
{
    public const int Size = 128;
    public const int TagSize = 64;

    /// <summary>The tag is raw bytes; Rafs writes the blob's sha256 as 64 lowercase hex digits (no NUL, fills the field).</summary>
    public static DeviceSlot Read(ReadOnlySpan<byte> b)
    {
        var tag = b[..TagSize];
        int n = tag.IndexOf((byte)0);
        return new DeviceSlot(
            Encoding.Latin1.GetString(n < 0 ? tag : tag[..n]),
            BinaryPrimitives.ReadUInt32LittleEndian(b[64..]),
            BinaryPrimitives.ReadUInt32LittleEndian(b[68..]));
    }

    public void Write(Span<byte> b)
    {
        b[..Size].Clear();
        if (Tag.Length > TagSize) throw new ArgumentException($"device tag longer than {TagSize} bytes: {Tag}");
        Encoding.Latin1.GetBytes(Tag, b[..TagSize]);
        BinaryPrimitives.WriteUInt32LittleEndian(b[64..], Blocks);
        BinaryPrimitives.WriteUInt32LittleEndian(b[68..], MappedBlockAddress);
    }
}
