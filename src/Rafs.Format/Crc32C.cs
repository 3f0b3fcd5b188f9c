using System.Buffers.Binary;
using System.Numerics;

namespace Rafs.Format;

/// <summary>
/// CRC32C as the kernel's crc32c(~0, buf, len): seeded with ~0 and without the final inversion.
/// System.IO.Hashing has no Castagnoli variant; BitOperations.Crc32C uses the CPU instruction.
/// </summary>
public static class Crc32C
{
    public static uint Compute(uint seed, ReadOnlySpan<byte> data)
    {
        uint crc = seed;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data)
            crc = BitOperations.Crc32C(crc, b);
        return crc;
    }
}
