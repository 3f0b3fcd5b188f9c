using System.Runtime.InteropServices;

namespace Rafs.Interop;

/// <summary>A failed syscall: the operation, the path it was about, and errno.</summary>
public sealed class PosixException : IOException
{
    public int Errno { get; }
    public string Operation { get; }
    public string? Path { get; }

    public PosixException(string operation, string? path, int errno, string? hint = null)
        : base($"{operation}{(path is null ? "" : " " + path)}: {Libc.ErrorText(errno)} (errno {errno}){(hint is null ? "" : "; " + hint)}")
    {
        Errno = errno;
        Operation = operation;
        Path = path;
    }

    /// <summary>The one place errno becomes an exception.</summary>
    internal static PosixException FromLastError(string operation, string? path, string? hint = null) =>
        new(operation, path, Marshal.GetLastSystemError(), hint);
}
