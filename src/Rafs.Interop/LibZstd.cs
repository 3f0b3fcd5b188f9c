using System.Runtime.InteropServices;

namespace Rafs.Interop;

/// <summary>
/// Debian's libzstd (libzstd.so.1, present wherever apt is) for one-shot chunk compression: bench/compressors.sh
/// measured it ~20–60% faster than the managed port at the same ratio, and LibraryImport keeps it AOT-safe.
/// </summary>
public static unsafe partial class LibZstd
{
    private const string Library = "libzstd.so.1";

    [LibraryImport(Library)] private static partial nuint ZSTD_compress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);
    [LibraryImport(Library)] private static partial nuint ZSTD_decompress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize);
    [LibraryImport(Library)] private static partial uint ZSTD_isError(nuint code);
    [LibraryImport(Library)] private static partial nuint ZSTD_compressBound(nuint srcSize);

    public static int CompressBound(int size) => (int)ZSTD_compressBound((nuint)size);

    /// <summary>Compresses <paramref name="source"/>; returns the compressed size, or -1 when it does not fit <paramref name="destination"/>.</summary>
    public static int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level)
    {
        fixed (byte* s = source, d = destination)
        {
            nuint n = ZSTD_compress(d, (nuint)destination.Length, s, (nuint)source.Length, level);
            return ZSTD_isError(n) != 0 ? -1 : (int)n;
        }
    }

    /// <summary>Decompresses one frame; returns the decompressed size, or -1 for corrupt input or a wrong size.</summary>
    public static int Decompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        fixed (byte* s = source, d = destination)
        {
            nuint n = ZSTD_decompress(d, (nuint)destination.Length, s, (nuint)source.Length);
            return ZSTD_isError(n) != 0 ? -1 : (int)n;
        }
    }
}
