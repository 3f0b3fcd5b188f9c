using Rafs.Daemon;
using Rafs.Storage;

namespace Rafs.Tests.Daemon;

/// <summary>How <c>rafs mount --frontend</c> picks a kernel path from what the daemon has.</summary>
public sealed class FrontendChoiceTests
{
    /// <summary>Only a name: choosing never touches a frontend's kernel side.</summary>
    private sealed class Named(string name) : IMountFrontend
    {
        public string Name => name;
        public void Register(OnDemandBlob blob) { }
        public void Unregister(OnDemandBlob blob) { }
        public IDisposable MountImage(string bootstrap, string mountPoint, IReadOnlyList<OnDemandBlob> blobs, bool takeOver) => throw new NotSupportedException();
        public bool IsWatching(OnDemandBlob blob) => false;
        public FrontendCounters Counters => default;
        public void Dispose() { }
    }

    private static Dictionary<string, IMountFrontend> Have(params string[] names) => names.ToDictionary(n => n, n => (IMountFrontend)new Named(n));

    [Theory]
    [InlineData("fanotify,fscache,fuse", "fanotify")]
    [InlineData("fscache,fuse", "fscache")]
    [InlineData("fuse", "fuse")]
    [InlineData("fuse,fanotify", "fanotify")]
    public void AutoPrefersFanotifyThenFscacheThenFuse(string available, string expected)
    {
        var have = Have(available.Split(','));
        Assert.Equal(expected, Frontends.Choose(have, "auto").Name);
        Assert.Equal(expected, Frontends.Choose(have, null).Name);
    }

    [Fact]
    public void AnExplicitFrontendIsTakenOrRefusedWithWhatIsMissing()
    {
        var have = Have("fanotify", "fuse");
        Assert.Equal("fuse", Frontends.Choose(have, "FUSE").Name);
        var missing = Assert.Throws<InvalidOperationException>(() => Frontends.Choose(have, "fscache"));
        Assert.Contains("CACHEFILES_ONDEMAND", missing.Message);
        Assert.Contains("fanotify, fuse", missing.Message);
        Assert.Throws<ArgumentException>(() => Frontends.Choose(have, "nfs"));
        Assert.Throws<InvalidOperationException>(() => Frontends.Choose(Have(), "auto"));
    }
}
