using Rafs.Interop;

namespace Rafs.Daemon;

/// <summary>
/// The kernel objects whose loss would break mounts if a worker died: the fanotify group (closing it fails open:
/// unfilled reads turn into zeros) and the bound /dev/cachefiles (closing it unbinds the cache and fails every
/// fscache mount). The supervisor opens them and the worker inherits them; either may be absent when the
/// kernel lacks the feature. FUSE needs no such object: its sessions live and die with the worker.
/// </summary>
public sealed class KernelChannels : IDisposable
{
    public Fanotify? Fanotify { get; private init; }
    public CachefilesDevice? Cachefiles { get; private init; }
    /// <summary>True when a previous worker may have used these (the new one answers its leftovers).</summary>
    public bool Inherited { get; private init; }

    /// <summary>The cachefiles cache directory: on the state directory's filesystem (ext4, xfs or btrfs; not tmpfs).</summary>
    public static string FscacheDirectoryOf(string stateDirectory) => Path.Combine(stateDirectory, "fscache");

    /// <summary>Opens whatever this kernel offers, logging why a path is unavailable.</summary>
    public static KernelChannels Open(DaemonOptions options, Action<string> log)
    {
        Fanotify? group = null;
        try
        {
            group = new Fanotify();
        }
        catch (PosixException e)
        {
            log($"fanotify frontend unavailable: {e.Message}");
        }
        CachefilesDevice? cachefiles = null;
        if (CachefilesDevice.IsPresent)
        {
            try
            {
                cachefiles = CachefilesDevice.Open();
                cachefiles.Bind(FscacheDirectoryOf(options.StateDirectory), "rafs");
            }
            catch (PosixException e)
            {
                log($"fscache frontend unavailable: {e.Message}");
                cachefiles?.Dispose();
                cachefiles = null;
            }
        }
        else log($"fscache frontend unavailable: no {CachefilesDevice.DevicePath} (kernel without CONFIG_CACHEFILES)");
        return new KernelChannels { Fanotify = group, Cachefiles = cachefiles };
    }

    /// <summary>Takes the supervisor's objects (fd -1: the supervisor has none of that kind).</summary>
    public static KernelChannels Adopt(int fanotifyFd, int cachefilesFd) => new()
    {
        Fanotify = fanotifyFd >= 0 ? new Fanotify(fanotifyFd) : null,
        Cachefiles = cachefilesFd >= 0 ? CachefilesDevice.Adopt(cachefilesFd) : null,
        Inherited = true,
    };

    /// <summary>Clears close-on-exec and returns the worker's command-line arguments naming the fds.</summary>
    public string[] InheritanceArguments() =>
    [
        "--fanotify-fd", (Fanotify?.AllowInheritance() ?? -1).ToString(),
        "--cachefiles-fd", (Cachefiles?.AllowInheritance() ?? -1).ToString(),
    ];

    public string Describe() =>
        $"fanotify group: {(Fanotify is null ? "none" : "yes")}, cachefiles: {(Cachefiles is null ? "none" : "bound")}";

    public void Dispose()
    {
        Fanotify?.Dispose();
        Cachefiles?.Dispose();
    }
}
