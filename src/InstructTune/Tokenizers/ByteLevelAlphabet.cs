namespace InstructTune.Tokenizers;

/// <summary>
/// GPT-2's byte ↔ printable character table: bytes that are printable Latin-1 (!..~, ¡..¬, ®..ÿ) map to themselves,
/// the other 68 bytes to U+0100.. in byte order. Every char is in the BMP, so a byte-level word has one UTF-16 unit
/// per byte.
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] ByteToCharTable = Build();
    private static readonly short[] CharToByteTable = BuildInverse();

    private static char[] Build()
    {
        var t = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is (>= 0x21 and <= 0x7E) or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
            t[b] = printable ? (char)b : (char)(256 + extra++);
        }
        return t;
    }

    private static short[] BuildInverse()
    {
        var inv = new short[512];
        Array.Fill(inv, (short)-1);
        for (int b = 0; b < 256; b++) inv[ByteToCharTable[b]] = (short)b;
        return inv;
    }

    public static char ByteToChar(byte b) => ByteToCharTable[b];

    /// <summary>The byte a ByteLevel character stands for, or -1.</summary>
    public static int CharToByte(char c) => c < 512 ? CharToByteTable[c] : -1;
}
