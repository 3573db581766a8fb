"""The word tables behind tastes, titles and names: plain data, apart from the code so that a
vocabulary can be recalibrated without reading any. Every entry is part of the output: changing,
adding or reordering one changes every dataset generated from then on."""

# genre: (name, family, weight, naming, emojis, titles "|"-separated, most common first, "=w" sets a weight)
# naming: chance that a playlist of this taste takes its title from the taste's vocabulary
GENRES = (
    ("pop", "pop", 9.0, 0.1, "💃🎤✨", "pop|top hits|pop hits|hits|today's top hits|pop music|top 40|bops|pop jams|radio hits|pop 2017|current hits|hot hits|pop songs|pop faves"),
    ("rap", "urban", 9.0, 0.34, "🔥💯🐐", "rap|hip hop=0.3|lit|rap caviar|hip hop/rap|rap music|turn up|hype|rap 🔥|bangers|hip-hop|rap jams|savage|rap playlist|trap music|goat"),
    ("country", "country", 7.0, 0.52, "🤠🐴🍺", "country|country music=0.3|classic country|country jams|new country|country faves|country songs|old country|country mix|country vibes|country 2017|backroads|country girl|country roads|southern|truck songs|bonfire"),
    ("rock", "rock", 4.6, 0.5, "🤘🎸", "rock|rock music|rock and roll|rock n roll|hard rock|rock playlist|rock on|rock classics|rock songs|alt rock|guitar|rock anthems"),
    ("r&b", "urban", 4.4, 0.2, "💜🌹", "r&b|rnb|r&b/soul|slow jams|r&b vibes|baby making music|r and b|smooth r&b|rnb vibes|r&b jams|late night r&b"),
    ("edm", "electronic", 3.4, 0.3, "🎧⚡", "edm|electronic|dance|edm bangers|electro|festival|edc|edm 2017|raves|drops|electronic music|dance music|edm mix"),
    ("indie", "alt", 3.2, 0.3, "🌿🌻", "indie|indie rock|indie folk|indie vibes|indie music|indie pop|hipster|indie jams|indie mix|coffeehouse|indie chill"),
    ("alternative", "alt", 2.6, 0.33, "🖤🌧", "alternative|alt|alternative rock|alt rock|alternative music|modern rock|alt jams|alternative mix"),
    ("latin", "latin", 2.0, 0.45, "🇲🇽💃", "latin|latino|spanish|musica|latin music|bachata|salsa|spanish songs|cumbia|musica latina"),
    ("worship", "christian", 2.9, 0.6, "🙏✝️🙌", "worship|christian|church|jesus|praise|praise and worship|christian music|god|worship music|sunday|faith|hillsong|gospel"),
    ("christmas", "holiday", 3.3, 0.82, "🎄🎅❄️", "christmas|christmas music=0.3|xmas|christmas songs|holiday|christmas 2016|holidays|christmas playlist|christmas mix|merry christmas|winter|christmas classics"),
    ("disney", "kids", 2.4, 0.58, "🏰✨🐭", "disney|disney songs|disney music|disney jams|disney channel|disney playlist|musicals|disney classics|princess|disney ❤️|pixar"),
    ("oldies", "retro", 3.4, 0.8, "📻🎙", "oldies|oldies but goodies|60s|70s|classics|motown|old school|golden oldies|oldies music|50s|60s and 70s|doo wop"),
    ("classic rock", "rock", 2.8, 0.33, "🎸🤘", "classic rock|classic|classic rock n roll|70s rock|dad rock|rock classics|old rock|80s rock|classic rock 🎸"),
    ("80s", "retro", 1.7, 0.45, "📼🕺", "80s|80's|80s music|80s hits|eighties|80s jams|80s pop|new wave"),
    ("90s", "retro", 1.4, 0.45, "📟💿", "90s|90's|90s music|90s hits|nineties|90s jams|90s rap|90s r&b|90s alternative"),
    ("2000s", "retro", 2.0, 0.45, "💿📱", "2000s|00s|2000's|early 2000s|2000s hits|2000s jams|00s hits|emo 2000s"),
    ("metal", "rock", 1.6, 0.45, "🤘💀", "metal|heavy metal|metalcore|death metal|metal 🤘|hardcore|thrash|heavy|screamo"),
    ("punk", "rock", 1.0, 0.45, "🧷", "punk|pop punk|punk rock|skate punk|punk jams|pop-punk"),
    ("emo", "rock", 1.3, 0.45, "🖤💔", "emo|emo jams|emo songs|emo trash|sad emo|emo phase|emo nite"),
    ("jazz", "mellow", 0.9, 0.45, "🎷🎺", "jazz|smooth jazz|jazz music|jazzy|jazz classics|bossa nova|swing|big band"),
    ("classical", "mellow", 0.9, 0.45, "🎻🎹", "classical|classical music|piano|orchestra|mozart|classics|baroque|symphony|strings"),
    ("reggae", "island", 0.9, 0.45, "🌴🇯🇲", "reggae|reggae vibes|roots|island|island vibes|dub|ska|reggae music"),
    ("folk", "country", 1.1, 0.45, "🌾🪕", "folk|folk music|americana|acoustic folk|folky|singer songwriter|folk rock"),
    ("blues", "retro", 0.5, 0.45, "🎷", "blues|the blues|blues rock|delta blues|blues music"),
    ("soul", "urban", 0.9, 0.45, "🎙🌹", "soul|soul music|neo soul|motown soul|soulful|classic soul|funk and soul"),
    ("kpop", "pop", 1.2, 0.45, "🇰🇷💖", "kpop|k-pop|bts|korean|kpop jams|k pop|kpop faves"),
    ("trap", "urban", 1.2, 0.45, "🔥💸", "trap|trap music|trap bangers|trap house|trap nation|trap jams|trap 🔥"),
    ("house", "electronic", 0.9, 0.45, "🏠🎧", "house|deep house|house music|tropical house|tech house|house party|house vibes"),
    ("dubstep", "electronic", 0.6, 0.45, "🔊", "dubstep|bass|drops|brostep|bass music|riddim"),
    ("acoustic", "mellow", 1.2, 0.45, "🎸☕", "acoustic|acoustic covers|covers|acoustic chill|unplugged|acoustic love|stripped"),
    ("lofi", "mellow", 0.8, 0.45, "☕🎧", "lofi|lo-fi|lofi hip hop|beats|chillhop|jazzhop|lofi beats"),
    ("gospel", "christian", 0.7, 0.45, "🙏", "gospel|gospel music|sunday morning|church songs|gospel hymns|hymns"),
    ("broadway", "kids", 0.7, 0.45, "🎭", "broadway|musicals|hamilton|show tunes|musical theatre|broadway musicals"),
    ("kids", "kids", 0.4, 0.45, "🧸", "kids|kids music|for the kids|kids songs|family|car songs for kids"),
    ("ambient", "mellow", 0.7, 0.45, "🌙☁️", "ambient|piano|instrumental|peaceful piano|meditation|yoga|calm|spa|ambient music"),
    ("reggaeton", "latin", 0.9, 0.45, "🔥💃", "reggaeton|reggaeton 🔥|perreo|latin trap|reggaeton mix|reggaeton lento"),
    ("bluegrass", "country", 0.4, 0.45, "🪕", "bluegrass|banjo|mountain music|newgrass"),
    ("funk", "urban", 0.4, 0.45, "🕺", "funk|funky|disco|groove|funk music|boogie"),
    ("grunge", "rock", 0.5, 0.45, "🎸", "grunge|90s grunge|seattle|grunge rock"),
)
# mood: (name, weight, naming, emojis, genre profile "genre:w,...", titles)
MOODS = (
    ("workout", 4.6, 0.68, "💪🏋🔥", "rap:4,edm:3,pop:2,trap:1.5,rock:1,house:1,dubstep:.5", "workout|gym=0.35|workout mix|running|lift|gym music|run|cardio|beast mode|pump up|workout playlist|gains|gym playlist|lifting|running mix|sweat|crossfit|spin|hiit"),
    ("chill", 4.6, 0.79, "😌🌙☁️", "indie:3,r&b:2,acoustic:2,lofi:2,pop:1.5,alternative:1,soul:.5,reggae:.5", "chill|chill vibes=0.3|chillin|chill music|relax|mellow|chill mix|chilled|calm|lazy sunday|coffee|laid back|chill out|relaxing|easy|cozy|rainy day"),
    ("party", 3.4, 0.65, "🎉🍻💃", "pop:3,rap:3,edm:2,latin:1,2000s:1,house:1,reggaeton:1", "party|party playlist|pregame|party mix|lit|turn up|party time|dance|party music|pre game|dance party|birthday|party hits|drinking|saturday night|club"),
    ("throwback", 3.6, 0.55, "⏪📼", "2000s:4,90s:2.5,rap:1,r&b:1.5,pop:1", "throwback|throwbacks=0.65|throwback jams|old school|tbt|throwback thursday|middle school|nostalgia|childhood|high school|2000s throwbacks|memories"),
    ("summer", 2.8, 0.63, "☀️🌴🌊", "pop:3,country:2,rap:1.5,reggae:1,latin:1,edm:1", "summer|summer 2017|summer vibes|summer 17|beach|summertime|summer jams|summer 2016|pool|beach vibes|summer playlist|summer nights|vacation|sun|july|june"),
    ("feels", 2.4, 0.69, "💔😢💭", "r&b:3,pop:2,indie:2,alternative:1,acoustic:1,emo:1", "feels|sad|in my feels|feelings|mood|sad songs|heartbreak|emotional|sad vibes|cry|late night|sad boi|in my feelings|moody|deep"),
    ("sleep", 1.8, 0.67, "😴🌙💤", "ambient:4,acoustic:2,classical:2,lofi:1,indie:1", "sleep|sleepy|sleep music|bedtime|night|relax|sleeping|lullaby|dreams|peaceful|night time|rest|slow"),
    ("vibes", 1.8, 0.61, "✨🌊😎", "r&b:3,rap:2,lofi:1,soul:1,pop:1", "vibes|good vibes|vibe|vibes only|late night vibes|vibez|good vibes only|wavy|smooth"),
    ("road trip", 1.7, 0.45, "🚗🛣", "classic rock:2,pop:2,country:2,indie:1.5,rock:1,2000s:1", "road trip|roadtrip|car|car jams|drive|driving|road trip 2017|travel|cruising|car songs|long drive|driving music|on the road"),
    ("love", 1.4, 0.45, "❤️💕😍", "r&b:3,pop:2,country:2,soul:1,acoustic:1", "love|love songs|bae|romance|baby|us|wedding|crush|him|her|date night|in love|babe"),
    ("study", 1.2, 0.45, "📚✏️", "lofi:3,classical:3,ambient:2,indie:1,jazz:1", "study|studying|focus|homework|study music|concentration|reading|work|study playlist|coffee shop|background|instrumental"),
    ("happy", 1.0, 0.45, "😊🌈☀️", "pop:3,indie:1.5,funk:1,soul:1,country:1", "happy|good mood|happy songs|feel good|sunshine|smile|good day|positive|upbeat|happy vibes"),
)
GENERIC = ("jams:3.5|new:3.2|music:2.7|favorites:1.6|my playlist:1.5|songs:1.5|playlist:1.4|mix:1.4|random:1.4|"
           "faves:1.5|good music:1.5|my songs:1.3|stuff:1.2|new music:1.2|2017:1.4|2016:1|2015:.6|new playlist:1|"
           "good songs:1.2|everything:.8|my music:.8|yes:.5|best:.5|whatever:.4|songs i like:.6|current:.6|liked:.6|"
           "all:.5|main:.4|my jams:.8|favs:.8|favorite songs:.8|tunes:.7|good stuff:.5|bops:.7|"
           "new stuff:.5|jamz:.5|jams 2017:.4|mood:.5|idk:.5|untitled:.4|"
           "🔥:1.2|💯:1|😍:.8|🎶:.8|❤️:.8|✨:.6|🙌:.5|👌:.5|😎:.5|💕:.5|🌞:.3|🤘:.3|👑:.3|🌸:.3|🐐:.2|🎧:.3|🌊:.3")
FIRST_NAMES = ("sarah jake emily josh hannah tyler madison ryan ashley kyle jessica brandon lauren matt taylor "
               "chris megan nick rachel alex sam katie jordan kayla austin amanda zach brittany andrew nicole "
               "jacob olivia emma liam noah ava mia ethan logan lucas mason abby grace chloe maria jose carlos "
               "sofia luis ana david daniel michael john james mom dad grandma babe bae").split()
THEME_WORDS = ("car shower beach work morning night drive lake pool road weekend friday sunday monday rain "
               "sunshine fire ocean mountain city home cabin camping boat coffee dinner kitchen bbq birthday "
               "wedding graduation senior spring fall winter autumn vacation florida texas california cali "
               "hawaii mexico beach house getaway adventure wanderlust dreams memories moments goodbye "
               "hello random mixtape tunes bops bangers anthems favs feelings mood energy hype zen calm "
               "golden blue purple pink red green black white neon sunset sunrise midnight stars moon "
               "space cosmic wild young free forever always never someday tonight today yesterday").split()
MONTHS = "january february march april may june july august september october november december".split()
SONG_WORDS = ("love night heart baby fire dream summer girl time home light life world boy rain sky "
              "money gold blue red wild young free forever tonight away back down up over crazy feel "
              "dance run fall hold stay believe remember alone together lost found broken better good "
              "bad sweet lonely happy sad high low river road city star moon sun ocean wave storm "
              "thunder shadow ghost angel devil king queen paradise heaven hell dreams days nights "
              "lights eyes hands lips kiss touch tears smile way road mind soul body fever sugar "
              "honey whiskey diamond gun money party people friends enemies hero island desert rose "
              "summer winter spring sunset sunrise midnight morning tomorrow yesterday million "
              "thousand hundred one two three last first only little big new old slow fast").split()
SYLLABLES = ("ka ri lo ne va mi so ta ze ro li an el on ar us ix ey ja mo de sa ly ra ko vi to ma na ce ba "
             "da fe go hu jo ki le nu pa ru si te vo wa xe yo zu bri cla dro fla gre kro pla shi sto tra "
             "qui ther lan mar ven sol dor kai nyx ren tal zé ña lö bé sø").split()
PUNCT = ("!", "!!", "!!!", "!!!!", ".", "..", "...", "~", "~~", "*", " :)", " ;)", " (:", " !!", " !", "$",
         "^^", " :", "*~", "!!!!!")  # all vanish under normalisation
DESCRIPTIONS = ("songs for {0}", "my favorite {0} songs", "the best {0} tracks {1}", "{0} {1}",
                "for when you need {0}", "updated weekly. {0}", "{1}{1}{1}")
