using System.Runtime.InteropServices;

namespace InstructTune.Common;

/// <summary>What a path is, following symbolic links: none, a regular file, a folder, or something else
/// (a FIFO, a character or block device, a socket).</summary>
public enum PathKind { Missing, RegularFile, Directory, Fifo, CharDevice, BlockDevice, Socket, Other }

/// <summary>
/// Input paths are checked before they are opened: a folder or a FIFO where a file is expected would otherwise
/// crash (UnauthorizedAccessException with an unrelated message) or hang forever (opening a FIFO blocks until a
/// writer appears). <see cref="RequireRegularFile"/> refuses both with an <see cref="InputException"/> naming the
/// path and what was expected. On Linux the file type comes from statx(2) (its struct layout is the same on every
/// architecture); elsewhere only folders are told apart from files.
/// </summary>
public static class FileKind
{
    public static PathKind Of(string path)
    {
        if (OperatingSystem.IsLinux())
        {
            var mode = StatxMode(path);
            if (mode is { } m)
                return (m & 0xF000) switch
                {
                    0 => PathKind.Missing,
                    0x8000 => PathKind.RegularFile,
                    0x4000 => PathKind.Directory,
                    0x1000 => PathKind.Fifo,
                    0x2000 => PathKind.CharDevice,
                    0x6000 => PathKind.BlockDevice,
                    0xC000 => PathKind.Socket,
                    _ => PathKind.Other,
                };
        }
        if (Directory.Exists(path)) return PathKind.Directory;
        return File.Exists(path) ? PathKind.RegularFile : PathKind.Missing;
    }

    /// <summary>Throws unless <paramref name="path"/> is a regular file; <paramref name="what"/> names it ("dataset", "shard").</summary>
    public static void RequireRegularFile(string path, string what)
    {
        var kind = Of(path);
        if (kind == PathKind.RegularFile) return;
        throw kind switch
        {
            PathKind.Missing => new FileNotFoundException($"{path}: {what} not found", path),
            PathKind.Directory => new InputException($"{path}: is a folder, expected the {what} file"),
            _ => new InputException($"{path}: is a {Describe(kind)}, not a regular file; refusing to read the {what} from it"),
        };
    }

    public static string Describe(PathKind kind) => kind switch
    {
        PathKind.Fifo => "FIFO (named pipe)",
        PathKind.CharDevice => "character device",
        PathKind.BlockDevice => "block device",
        PathKind.Socket => "socket",
        PathKind.Directory => "folder",
        PathKind.RegularFile => "regular file",
        PathKind.Missing => "missing path",
        _ => "special file",
    };

    [DllImport("libc", SetLastError = true, EntryPoint = "statx")]
    private static extern unsafe int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte* buffer);

    private static bool _statxMissing;

    private static unsafe ushort? StatxMode(string path)
    {
        if (_statxMissing) return null;
        const int AtFdCwd = -100;
        const uint StatxType = 1;
        byte* buffer = stackalloc byte[256];
        try
        {
            // struct statx: stx_mode is the u16 at byte offset 28 on every Linux architecture.
            if (Statx(AtFdCwd, path, 0, StatxType, buffer) != 0)
                return Marshal.GetLastPInvokeError() == 2 /* ENOENT */ || Marshal.GetLastPInvokeError() == 20 /* ENOTDIR */ ? (ushort)0 : null;
            return *(ushort*)(buffer + 28);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            _statxMissing = true;
            return null;
        }
    }
}
