namespace Rafs.Daemon;

/// <summary>
/// The request threads of a frontend (fanotify handlers, cachefiles and FUSE request loops). Each thread makes
/// its own step (with its own buffers) and runs it until <see cref="Stop"/>; a step waits at most a short poll
/// timeout, so stopping is noticed. An exception is logged and the thread goes on: a dead loop would leave the
/// kernel's readers waiting forever.
/// </summary>
/// <param name="name">Thread names are rafs-&lt;name&gt;-N.</param>
/// <param name="what">Names the frontend in logged errors.</param>
internal sealed class RequestThreads(string name, string what, Action<string>? log, int pauseAfterErrorMs = 10)
{
    private readonly List<Thread> _threads = [];
    private volatile bool _stopping;

    /// <param name="makeStep">Runs on each new thread; the step it returns answers what is pending and returns false to end the thread.</param>
    public void Start(int count, Func<Func<bool>> makeStep) => Start(count, () => (makeStep(), (IDisposable?)null));

    /// <param name="makeStep">Like the other overload, with per-thread resources disposed when the thread ends.</param>
    public void Start(int count, Func<(Func<bool> Step, IDisposable? Resources)> makeStep)
    {
        for (int i = 0; i < Math.Max(1, count); i++)
        {
            var thread = new Thread(() => Run(makeStep())) { IsBackground = true, Name = $"rafs-{name}-{i}" };
            _threads.Add(thread);
            thread.Start();
        }
    }

    private void Run((Func<bool> Step, IDisposable? Resources) thread)
    {
        using var resources = thread.Resources;
        while (!_stopping)
        {
            try
            {
                if (!thread.Step()) return;
            }
            catch (Exception e) when (!_stopping)
            {
                log?.Invoke($"{what}: {e.Message}");
                Thread.Sleep(pauseAfterErrorMs);
            }
        }
    }

    public void Stop()
    {
        _stopping = true;
        foreach (var t in _threads) t.Join();
        _threads.Clear();
    }
}

/// <summary>Memory aligned for direct I/O, from the pinned object heap (it never moves, and needs no freeing).</summary>
internal static class AlignedMemory
{
    public static unsafe Memory<byte> Allocate(int size, int alignment)
    {
        var array = GC.AllocateArray<byte>(size + alignment, pinned: true);
        fixed (byte* start = array)
        {
            int skew = (int)((nuint)start % (nuint)alignment);
            return array.AsMemory(skew == 0 ? 0 : alignment - skew, size);
        }
    }
}
