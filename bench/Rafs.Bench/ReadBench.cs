using System.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Rafs.Bench;

/// <summary>
/// Random 4 KiB reads over the files of a tree (files of 64 KiB or more, offsets weighted by size, fixed seed),
/// so two mounts of the same image get the same read sequence. Prints "READS SECONDS MB/s".
/// </summary>
public static class ReadBench
{
    public static int Random(string[] args)
    {
        if (args.Length < 1) { Console.Error.WriteLine("usage: randread TREE [READS] [SEED]"); return 2; }
        int reads = args.Length > 1 ? int.Parse(args[1]) : 20000;
        var random = new Random(args.Length > 2 ? int.Parse(args[2]) : 42);
        var files = Directory.EnumerateFiles(args[0], "*", SearchOption.AllDirectories)
            .Select(f => new FileInfo(f)).Where(f => f.LinkTarget is null && f.Length >= 64 << 10)
            .OrderBy(f => f.FullName, StringComparer.Ordinal).ToList();
        if (files.Count == 0) { Console.Error.WriteLine($"{args[0]}: no file of 64 KiB or more"); return 1; }
        var cumulative = new long[files.Count];
        long total = 0;
        for (int i = 0; i < files.Count; i++) cumulative[i] = total += files[i].Length;
        var plan = new (int File, long Offset)[reads];
        for (int i = 0; i < reads; i++)
        {
            long at = random.NextInt64(total);
            int f = Array.BinarySearch(cumulative, at);
            f = f < 0 ? ~f : f + 1;
            if (f >= files.Count) f = files.Count - 1;
            plan[i] = (f, random.NextInt64(files[f].Length / 4096) * 4096);
        }
        var handles = new SafeFileHandle?[files.Count];
        var buffer = new byte[4096];
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        foreach (var (f, offset) in plan)
        {
            var h = handles[f] ??= File.OpenHandle(files[f].FullName);
            bytes += RandomAccess.Read(h, buffer, offset);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        foreach (var h in handles) h?.Dispose();
        Console.WriteLine($"{reads} {seconds:0.000} {bytes / seconds / 1e6:0.0}");
        return 0;
    }
}
