using System.Diagnostics;

namespace Rafs.KernelTests;

public readonly record struct RunResult(int Exit, string Stdout, string Stderr)
{
    public string All => $"exit {Exit}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

public static class Tools
{
    public static RunResult Run(string file, params string[] args) => RunWithTimeout(TimeSpan.FromMinutes(5), file, args);

    public static RunResult RunWithTimeout(TimeSpan timeout, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeout}");
        }
        return new RunResult(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs and asserts exit 0, returning the result.</summary>
    public static RunResult Ok(string file, params string[] args)
    {
        var r = Run(file, args);
        Assert.True(r.Exit == 0, $"{file} {string.Join(' ', args)} failed:\n{r.All}");
        return r;
    }
}

/// <summary>Runs the real `rafs` CLI as a process, as users do.</summary>
public static class RafsCli
{
    private static readonly Lazy<string> Dll = new(Locate);

    private static string Locate()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Rafs.slnx"))) dir = dir.Parent;
        if (dir is null) throw new InvalidOperationException("cannot find the repository root (Rafs.slnx) above the test assembly");
        // The test assembly's configuration folder (debug/release) names the CLI's too.
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Name;
        var dll = Path.Combine(dir.FullName, "artifacts", "bin", "Rafs.Cli", configuration, "rafs.dll");
        if (!File.Exists(dll))
            throw new InvalidOperationException($"{dll} is missing: build the solution first (dotnet build Rafs.slnx -c {configuration})");
        return dll;
    }

    public static RunResult Run(params string[] args) => Tools.Run("dotnet", [Dll.Value, .. args]);

    public static RunResult Ok(params string[] args)
    {
        var r = Run(args);
        Assert.True(r.Exit == 0, $"rafs {string.Join(' ', args)} failed:\n{r.All}");
        return r;
    }

    /// <summary>`rafs build SRC --bootstrap --blob-dir --chunk-size 256K` into the scratch directory: small chunks, so laziness shows.</summary>
    public static (string Boot, string Blobs) BuildBootstrap(Scratch scratch, string src, string name = "image")
    {
        var boot = scratch.PathOf(name + ".boot");
        var blobs = scratch.PathOf(name + "-blobs");
        Ok("build", src, "--bootstrap", boot, "--blob-dir", blobs, "--chunk-size", "256K");
        return (boot, blobs);
    }
}
