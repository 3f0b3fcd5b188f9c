using System.Globalization;
using Rafs.Format;

namespace Rafs.Cli;

internal static class CliSupport
{
    /// <summary>Runs a verb body, turning expected failures into one clear line on stderr and exit code 1.</summary>
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is IOException or ImageException or ArgumentException or InvalidDataException
                                   or InvalidOperationException or UnauthorizedAccessException or NotSupportedException or FormatException
                                   or HttpRequestException or KeyNotFoundException or Rafs.Interop.PosixException)
        {
            Console.Error.WriteLine($"rafs: {e.Message}");
            return 1;
        }
    }

    /// <summary>Parses sizes like 1048576, 64K, 1M, 16MiB.</summary>
    public static long ParseSize(string text)
    {
        var t = text.Trim().ToUpperInvariant().Replace("IB", "").Replace("B", "");
        long multiplier = 1;
        if (t.EndsWith('K')) { multiplier = 1L << 10; t = t[..^1]; }
        else if (t.EndsWith('M')) { multiplier = 1L << 20; t = t[..^1]; }
        else if (t.EndsWith('G')) { multiplier = 1L << 30; t = t[..^1]; }
        if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
            throw new FormatException($"'{text}' is not a size (examples: 65536, 64K, 1M)");
        return checked(n * multiplier);
    }

    public static string Bytes(long n) => n switch
    {
        >= 1L << 30 => $"{n / (double)(1L << 30):0.##} GiB",
        >= 1L << 20 => $"{n / (double)(1L << 20):0.##} MiB",
        >= 1L << 10 => $"{n / 1024.0:0.##} KiB",
        _ => $"{n} B",
    };

    /// <summary>Progress on stderr, redrawn in place on a terminal and silent when stderr is a file or pipe.</summary>
    public sealed class ConsoleProgress : IProgress<Rafs.Build.BuildProgress>
    {
        private readonly bool _enabled = !Console.IsErrorRedirected;
        private long _lastTick;

        public void Report(Rafs.Build.BuildProgress value)
        {
            if (!_enabled) return;
            long now = Environment.TickCount64;
            if (now - _lastTick < 200 && value.Done < value.Total) return;
            _lastTick = now;
            double pct = value.Total > 0 ? 100.0 * value.Done / value.Total : 100;
            Console.Error.Write($"\r{value.Phase}: {Bytes(value.Done)} / {Bytes(value.Total)} ({pct:0}%)   ");
        }

        public void Done()
        {
            if (_enabled) Console.Error.WriteLine();
        }
    }
}
