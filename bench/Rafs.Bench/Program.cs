using System.Diagnostics;
using System.Runtime.InteropServices;
using Rafs.Bench;

// Chunk codec benchmark: compresses the files of a tree in 1 MiB chunks with each candidate, one thread,
// and prints MB/s (compress, decompress) and the size ratio. Usage: compressors TREE [MAX_MIB]
if (args.Length > 0 && args[0] == "randread") return ReadBench.Random(args[1..]);
if (args.Length < 1) { Console.Error.WriteLine("usage: Rafs.Bench TREE [MAX_MIB] | randread TREE [READS] [SEED]"); return 2; }
long max = (args.Length > 1 ? long.Parse(args[1]) : 256) << 20;
var chunks = new List<byte[]>();
long total = 0;
foreach (var file in Directory.EnumerateFiles(args[0], "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
{
    if (total >= max) break;
    var info = new FileInfo(file);
    if (info.LinkTarget is not null || info.Length == 0) continue;
    var data = File.ReadAllBytes(file);
    for (int at = 0; at < data.Length && total < max; at += 1 << 20)
    {
        var chunk = data.AsSpan(at, Math.Min(1 << 20, data.Length - at)).ToArray();
        chunks.Add(chunk);
        total += chunk.Length;
    }
}
Console.WriteLine($"{chunks.Count} chunks, {total >> 20} MiB from {args[0]}");
Console.WriteLine($"| {"codec",-26} | {"compress MB/s",13} | {"decompress MB/s",15} | {"size",6} |");
Console.WriteLine($"|{new string('-', 28)}|{new string('-', 15)}|{new string('-', 17)}|{new string('-', 8)}|");
var output = new byte[2 << 20];
var back = new byte[1 << 20];
void Measure(string name, Func<byte[], byte[], int> compress, Func<ReadOnlySpan<byte>, byte[], int> decompress)
{
    var stored = new List<byte[]>(chunks.Count);
    var sw = Stopwatch.StartNew();
    foreach (var c in chunks) stored.Add(output.AsSpan(0, compress(c, output)).ToArray());
    double ct = sw.Elapsed.TotalSeconds;
    sw.Restart();
    for (int i = 0; i < chunks.Count; i++)
        if (decompress(stored[i], back) != chunks[i].Length) throw new InvalidOperationException($"{name}: round trip failed");
    double dt = sw.Elapsed.TotalSeconds;
    long size = stored.Sum(s => (long)s.Length);
    Console.WriteLine($"| {name,-26} | {total / ct / 1e6,13:0} | {total / dt / 1e6,15:0} | {100.0 * size / total,5:0.0}% |");
}
foreach (int level in new[] { 1, 3 })
{
    using var zc = new ZstdSharp.Compressor(level);
    using var zd = new ZstdSharp.Decompressor();
    Measure($"ZstdSharp.Port level {level}", (s, d) => zc.Wrap(s, d), (s, d) => zd.Unwrap(s, d));
    if (LibZstd.Available)
        Measure($"libzstd (LibraryImport) {level}", (s, d) => LibZstd.Compress(s, d, level), (s, d) => LibZstd.Decompress(s, d));
}
Measure("K4os LZ4 (fast)", (s, d) => K4os.Compression.LZ4.LZ4Codec.Encode(s, d), (s, d) => K4os.Compression.LZ4.LZ4Codec.Decode(s, d));
return 0;

namespace Rafs.Bench
{
    /// <summary>Debian's libzstd through LibraryImport, to compare with the managed port.</summary>
    internal static unsafe partial class LibZstd
    {
        [LibraryImport("libzstd.so.1")] private static partial nuint ZSTD_compress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);
        [LibraryImport("libzstd.so.1")] private static partial nuint ZSTD_decompress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize);
        [LibraryImport("libzstd.so.1")] private static partial uint ZSTD_isError(nuint code);

        public static bool Available => NativeLibrary.TryLoad("libzstd.so.1", out _);

        public static int Compress(ReadOnlySpan<byte> src, Span<byte> dst, int level)
        {
            fixed (byte* s = src, d = dst)
            {
                nuint n = ZSTD_compress(d, (nuint)dst.Length, s, (nuint)src.Length, level);
                return ZSTD_isError(n) != 0 ? throw new InvalidOperationException("zstd error") : (int)n;
            }
        }

        public static int Decompress(ReadOnlySpan<byte> src, Span<byte> dst)
        {
            fixed (byte* s = src, d = dst)
            {
                nuint n = ZSTD_decompress(d, (nuint)dst.Length, s, (nuint)src.Length);
                return ZSTD_isError(n) != 0 ? throw new InvalidOperationException("zstd error") : (int)n;
            }
        }
    }
}
