using Microsoft.Win32.SafeHandles;

namespace Rafs.Build;

/// <summary>
/// Buffers writes at non-decreasing file offsets and flushes them in large pieces, so laying out thousands of
/// small inodes costs a few syscalls. Gaps are left as zeros.
/// </summary>
internal sealed class RegionWriter(SafeFileHandle file) : IDisposable
{
    private const int Capacity = 1 << 20;
    private readonly byte[] _buffer = new byte[Capacity];
    private long _bufferStart = -1;
    private int _length;

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            if (_bufferStart < 0 || offset < _bufferStart || offset >= _bufferStart + Capacity)
            {
                if (_bufferStart >= 0 && offset < _bufferStart + _length)
                    throw new InvalidOperationException("region writes must not go backwards");
                Flush();
                _bufferStart = offset;
            }
            int at = (int)(offset - _bufferStart);
            int n = Math.Min(data.Length, Capacity - at);
            data[..n].CopyTo(_buffer.AsSpan(at));
            _length = Math.Max(_length, at + n);
            data = data[n..];
            offset += n;
        }
    }

    public void Flush()
    {
        if (_bufferStart >= 0 && _length > 0)
            RandomAccess.Write(file, _buffer.AsSpan(0, _length), _bufferStart);
        _buffer.AsSpan(0, _length).Clear();
        _bufferStart = -1;
        _length = 0;
    }

    public void Dispose() => Flush();
}
