namespace Rafs.Format;

/// <summary>Base of the only two exceptions an image reader lets escape.</summary>
public abstract class ImageException(string message) : Exception(message);

/// <summary>The image is damaged or hostile: a structure is out of bounds or inconsistent.</summary>
public sealed class ImageCorruptException(string message) : ImageException(message);

/// <summary>The image is valid EROFS but uses something Rafs cannot read (a compressed layout, an unknown feature).</summary>
public sealed class ImageUnsupportedException(string message) : ImageException(message);

internal static class Throw
{
    public static ImageCorruptException Corrupt(string message) => new(message);
}
