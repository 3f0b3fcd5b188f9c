using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Rafs.Interop;

namespace Rafs.Daemon;

/// <summary>
/// <c>rafs daemon</c>: a small supervisor that owns the fanotify group and the bound /dev/cachefiles
/// (<see cref="KernelChannels"/>) and runs the worker as a child that inherits them. Both must outlive any worker
/// crash: a closed fanotify group turns unfilled reads into zeros, a closed cachefiles device fails every fscache
/// mount. The supervisor restarts the worker, which answers the dead worker's pending fanotify events with EIO,
/// asks cachefiles to resend its requests in flight, and takes the mounts over from the state file. SIGTERM/SIGINT stop the worker cleanly, then the supervisor.
/// </summary>
public static partial class Supervisor
{
    [LibraryImport("libc", SetLastError = true)] private static partial int kill(int pid, int signal);
    private const int SIGTERM = 15;
    private const int MaxCrashesPerMinute = 10;

    /// <summary>Holds the supervisor's pid while it runs, so clients wait for a restarting worker instead of failing.</summary>
    public static string PidFile(string socket) => Path.GetFullPath(socket) + ".pid";

    public static int Run(DaemonOptions options)
    {
        var pidFile = PidFile(options.Socket);
        Directory.CreateDirectory(Path.GetDirectoryName(pidFile)!);
        File.WriteAllText(pidFile, Environment.ProcessId + "\n");
        try
        {
            return Supervise(options);
        }
        finally
        {
            File.Delete(pidFile);
        }
    }

    private static int Supervise(DaemonOptions options)
    {
        using var channels = KernelChannels.Open(options, DaemonHost.Log);
        var inherit = channels.InheritanceArguments();
        bool stopping = false;
        Process? worker = null;
        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            stopping = true;
            if (worker is { HasExited: false }) kill(worker.Id, SIGTERM);
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        var crashes = new Queue<DateTime>();
        int restarts = 0;
        DaemonHost.Log($"supervisor {Environment.ProcessId} holds the kernel channels ({channels.Describe()})");
        while (true)
        {
            worker = StartWorker(options, inherit, restarts);
            worker.WaitForExit();
            int code = worker.ExitCode;
            if (code == 0 || stopping)
            {
                DaemonHost.Log($"worker exited ({code}); supervisor stops");
                return code;
            }
            crashes.Enqueue(DateTime.UtcNow);
            while (crashes.Count > 0 && crashes.Peek() < DateTime.UtcNow.AddMinutes(-1)) crashes.Dequeue();
            if (crashes.Count > MaxCrashesPerMinute)
            {
                DaemonHost.Log($"worker crashed {crashes.Count} times in a minute; giving up and unmounting everything");
                DetachAll(options);
                return 1;
            }
            restarts++;
            DaemonHost.Log($"worker {worker.Id} died (exit {code}); restarting it (restart {restarts})");
            Thread.Sleep(200);
        }
    }

    private static Process StartWorker(DaemonOptions options, string[] inherit, int restarts)
    {
        var start = new ProcessStartInfo(SelfLauncher.Executable) { UseShellExecute = false };
        foreach (var a in SelfLauncher.DaemonCommand(options, ["--worker", .. inherit])) start.ArgumentList.Add(a);
        start.Environment["RAFS_SUPERVISOR_PID"] = Environment.ProcessId.ToString();
        start.Environment["RAFS_WORKER_RESTARTS"] = restarts.ToString();
        return Process.Start(start) ?? throw new IOException("could not start the daemon worker");
    }

    /// <summary>Last resort before the group closes: lazily unmount what the state file lists, so no hole reads as zeros.</summary>
    private static void DetachAll(DaemonOptions options)
    {
        try
        {
            foreach (var r in MountManager.ReadRecords(options.StateDirectory))
                if (Mounts.IsMountPoint(r.Request.MountPoint))
                    Mounts.Unmount(r.Request.MountPoint, detach: true);
        }
        catch (Exception e) when (e is JsonException or PosixException or IOException)
        {
            DaemonHost.Log($"unmounting after repeated crashes: {e.Message}");
        }
    }
}

/// <summary>How this program starts itself again (apphost/NativeAOT binary, or `dotnet rafs.dll`).</summary>
public static class SelfLauncher
{
    public static string Executable => Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell this program's path");

    public static IReadOnlyList<string> Prefix =>
        Path.GetFileNameWithoutExtension(Executable) == "dotnet" ? [Path.Combine(AppContext.BaseDirectory, "rafs.dll")] : [];

    /// <summary>Arguments after <see cref="Executable"/> that run `rafs daemon` with <paramref name="options"/>.</summary>
    public static IEnumerable<string> DaemonCommand(DaemonOptions options, params string[] extra) =>
    [
        .. Prefix, "daemon", .. extra, "--socket", options.Socket, "--state-dir", options.StateDirectory,
        "--threads", options.Threads.ToString(), "--readahead", options.AmplifyBytes.ToString(),
    ];
}
