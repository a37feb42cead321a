using Google.Protobuf;

namespace InstructTune.Tokenizers.SentencePiece;

/// <summary>SentencePiece piece types (sentencepiece_model.proto, ModelProto.SentencePiece.Type).</summary>
public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

public sealed record SentencePieceEntry(string Piece, float Score, PieceType Type);

/// <summary>
/// The subset of sentencepiece_model.proto that encoding needs, read straight from the wire format with
/// Google.Protobuf's CodedInputStream (no generated code): ModelProto.pieces (1), trainer_spec (2) fields
/// model_type (3), treat_whitespace_as_suffix (24), byte_fallback (35), unk/bos/eos/pad ids (40-43), unk_surface (44);
/// normalizer_spec (3) fields name (1), precompiled_charsmap (2), add_dummy_prefix (3), remove_extra_whitespaces (4),
/// escape_whitespaces (5). Unknown fields are skipped; defaults are the proto defaults.
/// </summary>
public sealed class SentencePieceModelProto
{
    public List<SentencePieceEntry> Pieces { get; } = new();
    public int ModelType { get; private set; } = 1; // 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public bool ByteFallback { get; private set; }
    public int UnkId { get; private set; } = 0;
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public string UnkSurface { get; private set; } = " \u2047 ";
    public string NormalizerName { get; private set; } = "";
    public byte[] PrecompiledCharsmap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    public static SentencePieceModelProto Parse(byte[] data, string path)
    {
        var m = new SentencePieceModelProto();
        try
        {
            var input = new CodedInputStream(data);
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        m.Pieces.Add(ReadPiece(input.ReadBytes()));
                        break;
                    case 2 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        m.ReadTrainer(input.ReadBytes());
                        break;
                    case 3 when WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited:
                        m.ReadNormalizer(input.ReadBytes());
                        break;
                    default:
                        input.SkipLastField();
                        break;
                }
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new TokenizerFormatException($"{path}: not a SentencePiece model (protobuf: {e.Message})", e);
        }
        if (m.Pieces.Count == 0) throw new TokenizerFormatException($"{path}: the SentencePiece model has no pieces");
        if (m.ModelType is not (1 or 2))
            throw new TokenizerFormatException($"{path}: trainer_spec.model_type {m.ModelType} is not supported (UNIGRAM = 1 and BPE = 2 are)");
        if (m.UnkId < 0 || m.UnkId >= m.Pieces.Count)
            throw new TokenizerFormatException($"{path}: trainer_spec.unk_id {m.UnkId} is outside the {m.Pieces.Count} pieces");
        return m;
    }

    private static SentencePieceEntry ReadPiece(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        string piece = ""; float score = 0; int type = 1;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: piece = input.ReadString(); break;
                case 2: score = input.ReadFloat(); break;
                case 3: type = input.ReadEnum(); break;
                default: input.SkipLastField(); break;
            }
        }
        return new SentencePieceEntry(piece, score, (PieceType)type);
    }

    private void ReadTrainer(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 3: ModelType = input.ReadEnum(); break;
                case 24: TreatWhitespaceAsSuffix = input.ReadBool(); break;
                case 35: ByteFallback = input.ReadBool(); break;
                case 40: UnkId = input.ReadInt32(); break;
                case 41: BosId = input.ReadInt32(); break;
                case 42: EosId = input.ReadInt32(); break;
                case 43: PadId = input.ReadInt32(); break;
                case 44: UnkSurface = input.ReadString(); break;
                default: input.SkipLastField(); break;
            }
        }
    }

    private void ReadNormalizer(ByteString bytes)
    {
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: NormalizerName = input.ReadString(); break;
                case 2: PrecompiledCharsmap = input.ReadBytes().ToByteArray(); break;
                case 3: AddDummyPrefix = input.ReadBool(); break;
                case 4: RemoveExtraWhitespaces = input.ReadBool(); break;
                case 5: EscapeWhitespaces = input.ReadBool(); break;
                default: input.SkipLastField(); break;
            }
        }
    }
}
