using Rafs.Interop;
using Rafs.Storage;

namespace Rafs.Daemon;

/// <summary>
/// A kernel path that turns a verified bootstrap and its on-demand blobs into a mounted filesystem: fanotify
/// pre-content hooks on file-backed EROFS, cachefiles on-demand mode (EROFS over fscache), or FUSE. All three
/// share the host's <see cref="BlobCache"/>, so a blob is fetched and verified once whichever path reads it.
/// </summary>
public interface IMountFrontend : IDisposable
{
    /// <summary>"fanotify", "fscache" or "fuse": what <c>rafs mount --frontend</c> and <c>rafs status</c> say.</summary>
    string Name { get; }

    /// <summary>An image is about to use the blob (the kernel must be able to ask about it before the mount).</summary>
    void Register(OnDemandBlob blob);

    /// <summary>The last image using the blob is gone.</summary>
    void Unregister(OnDemandBlob blob);

    /// <summary>
    /// Mounts the image (or, with <paramref name="takeOver"/>, serves a mount a previous worker made); disposing
    /// the result unmounts it.
    /// </summary>
    IDisposable MountImage(string bootstrap, string mountPoint, IReadOnlyList<OnDemandBlob> blobs, bool takeOver);

    /// <summary>True while the kernel still asks this daemon about the blob (it is incomplete and watched).</summary>
    bool IsWatching(OnDemandBlob blob);

    FrontendCounters Counters { get; }
}

/// <summary>Requests the kernel sent, those that had to fetch, those answered with EIO, and time spent fetching.</summary>
public readonly record struct FrontendCounters(long Requests, long Fills, long Errors, TimeSpan FillTime);

public static class Frontends
{
    public const string Fanotify = "fanotify", Fscache = "fscache", Fuse = "fuse", Auto = "auto";

    /// <summary>Preference order for <c>auto</c>: the kernel serving from files it reads itself first, FUSE last.</summary>
    public static readonly string[] Preference = [Fanotify, Fscache, Fuse];

    /// <summary>Picks <paramref name="requested"/> (or the best available for "auto"), or says what is missing.</summary>
    public static IMountFrontend Choose(IReadOnlyDictionary<string, IMountFrontend> available, string? requested)
    {
        requested = string.IsNullOrEmpty(requested) ? Auto : requested.ToLowerInvariant();
        if (requested == Auto)
        {
            foreach (var name in Preference)
                if (available.TryGetValue(name, out var f)) return f;
            throw new InvalidOperationException("this kernel offers no way to mount on demand: neither fanotify pre-content hooks (Linux 6.14+), cachefiles on-demand mode, nor /dev/fuse");
        }
        if (!Preference.Contains(requested))
            throw new ArgumentException($"unknown frontend '{requested}': use auto, {string.Join(", ", Preference)}");
        return available.TryGetValue(requested, out var chosen) ? chosen
            : throw new InvalidOperationException($"the {requested} frontend is not available on this kernel or daemon ({Why(requested)}); available: {string.Join(", ", available.Keys)}");
    }

    private static string Why(string name) => name switch
    {
        Fanotify => "needs fanotify pre-content hooks, Linux 6.14+",
        Fscache => "needs /dev/cachefiles with CONFIG_CACHEFILES_ONDEMAND and EROFS_FS_ONDEMAND, Linux 5.19 to 7.1",
        _ => "needs /dev/fuse",
    };
}

/// <summary>A kernel mount that is undone by unmounting it (lazily when busy) and then running <paramref name="after"/>.</summary>
internal sealed class KernelMount(string mountPoint, Action? after = null) : IDisposable
{
    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Mounts.UnmountOrDetach(mountPoint);
        after?.Invoke();
    }
}
